package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the name of the database file inside the state folder.
const FileName = "qpd.db"

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNotFound: the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a row with the same key already exists.
	ErrExists = errors.New("store: already exists")
	// ErrInvalid: the caller passed a value the store cannot hold.
	ErrInvalid = errors.New("store: invalid value")
	// ErrNewerSchema: the file was written by a newer daemon.
	ErrNewerSchema = errors.New("store: database schema is newer than this program")
)

// Store is an open state database. It is safe for concurrent use; write
// transactions are serialized.
type Store struct {
	db   *sql.DB
	path string
	// readers are the connections views read through (readers.go), and
	// rstmts their prepared statements.
	readers *sql.DB
	rstmts  stmtCache
	now     func() time.Time
	// scrubErr is the last failed checkpoint (ScrubError).
	scrubErr atomic.Pointer[error]
	// stmts are the statements kept prepared (stmts.go).
	stmts stmtCache
	// memo keeps decoded values of rows (memo.go).
	memo memo
	// states are the group states last read or written (group_states.go).
	states stateCache
	// keys is the identity's expanded key (identity_cache.go).
	keys expandedKey
	// identity is the committed identity once read (identity_cache.go).
	identity identityMemo
	// merged is the merged direct chats once read (direct_memo.go).
	merged mergedMemo
	// outboxSig is signalled by commits that touch pending items
	// (outbox_signal.go), and fresh lists the items they add
	// (outbox_fresh.go).
	outboxSig signal
	fresh     freshOutbox
	// writes counts write transactions' statements (stmt_count.go).
	writes writeStatements
}

// Open opens (creating when needed) the database in dir. dir is created with
// mode 0700 and tightened to 0700 if it exists; the database file gets mode
// 0600.
func Open(ctx context.Context, dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("store: open: %w: empty state folder", ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create state folder: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: set state folder mode: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// Create the file ourselves so that it never exists with a wider mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: create database file: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("store: set database file mode: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	// Deleted content is overwritten with zeros (see scrub.go).
	q.Add("_pragma", "secure_delete(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One connection: SQLite allows one writer anyway, and a single
	// connection keeps every transaction strictly ordered.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("store: set mode of %s: %w", path+suffix, err)
		}
	}
	if s.readers, err = openReaders(path); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database, first folding the write-ahead log into the
// file and truncating it (scrub.go).
func (s *Store) Close() error {
	// The readers close first: none holds a snapshot the checkpoint would
	// wait for.
	s.rstmts.close()
	rerr := s.readers.Close()
	cerr := s.checkpoint(context.Background())
	s.stmts.close()
	s.memo.forget()
	s.states.forget()
	s.identity.forget()
	s.keys.wipe()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("store: close readers: %w", rerr)
	}
	return cerr
}

// Tx is one transaction. Its methods must not be used after the function
// given to Update or View returns.
type Tx struct {
	ctx      context.Context
	tx       *sql.Tx
	now      time.Time
	readOnly bool
	// scrub is set by writes that delete secrets (scrub.go).
	scrub bool
	// broken is set when a savepoint failed: tx must not commit.
	broken error
	// outboxTouched is set by writes that may make an item pending
	// (outbox_signal.go); outboxOther by those other than adding an
	// application item, whose items are in freshAdded (outbox_fresh.go).
	outboxTouched bool
	outboxOther   bool
	freshAdded    []OutboxItem
	// stmts are the store's prepared statements (stmts.go); bound, the
	// first of them bound to tx, each reused for the rest of tx.
	stmts  *stmtCache
	bound  [12]boundStmt
	nbound int
	// memo, kept and handed are the decoded values (memo.go): the
	// store's, those tx keeps once it commits, those it was handed.
	memo   *memo
	states *stateCache
	keys   *expandedKey
	// identity is the store's kept identity; identityPut is set once tx
	// wrote the row (identity_cache.go).
	identity    *identityMemo
	identityPut bool
	// merged is the store's merged direct chats; directPut is set once
	// tx wrote a direct chat (direct_memo.go).
	merged    *mergedMemo
	directPut bool
	writes    *writeStatements
	kept      []keptValue
	handed    map[any]bool
	// after runs once tx commits (group_ratchets.go).
	after []func()
}

// Update runs fn in a write transaction and commits it when fn returns nil.
// Any error from fn rolls everything back and is returned unchanged.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, false, fn)
}

// View runs fn in a transaction that is always rolled back, on a reader
// connection (readers.go): it sees the last commit and does not wait for a
// write transaction that is open.
func (s *Store) View(ctx context.Context, fn func(*Tx) error) error {
	return s.view(ctx, fn)
}

func (s *Store) run(ctx context.Context, readOnly bool, fn func(*Tx) error) error {
	defer s.stmts.prepareWanted(s.db)
	return s.runTx(ctx, readOnly, fn, func() (*sql.Tx, error) { return s.db.BeginTx(ctx, nil) })
}

// runTx runs fn in the transaction begin starts on the writer.
func (s *Store) runTx(ctx context.Context, readOnly bool, fn func(*Tx) error, begin func() (*sql.Tx, error)) error {
	return s.runTxOn(ctx, readOnly, &s.stmts, fn, begin)
}

// runTxOn runs fn in the transaction begin starts, whose connections
// stmts holds the prepared statements of.
func (s *Store) runTxOn(ctx context.Context, readOnly bool, stmts *stmtCache, fn func(*Tx) error, begin func() (*sql.Tx, error)) error {
	sqlTx, err := begin()
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{ctx: stmtContext(ctx, readOnly), tx: sqlTx, now: s.now(), readOnly: readOnly, stmts: stmts, memo: &s.memo, states: &s.states, keys: &s.keys, identity: &s.identity, merged: &s.merged, writes: &s.writes}
	err = fn(tx)
	if err == nil {
		err = tx.broken
	}
	if err != nil {
		sqlTx.Rollback()
		return err
	}
	if readOnly {
		sqlTx.Rollback()
		return nil
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for _, fn := range tx.after {
		fn() // before the memo hands the kept values to another transaction
	}
	if len(tx.kept) > 0 {
		s.memo.put(tx.kept)
	}
	if tx.outboxTouched {
		s.commitFresh(tx)
		s.outboxSig.notify()
	}
	if tx.scrub {
		// The transaction is durable; a failed truncation only leaves the
		// old pages in the log until the next one, so it is recorded
		// (ScrubError) rather than failing this commit.
		if err := s.checkpoint(ctx); err != nil {
			s.scrubErr.Store(&err)
		}
	}
	return nil
}

func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	if tx.readOnly {
		return nil, fmt.Errorf("store: %w: write in a read-only transaction", ErrInvalid)
	}
	return tx.execAny(query, args...)
}

// execAny runs query, which may be one that writes in a View transaction
// (a savepoint).
func (tx *Tx) execAny(query string, args ...any) (sql.Result, error) {
	tx.countStatement()
	if st := tx.stmt(query); st != nil {
		return st.ExecContext(tx.ctx, args...)
	}
	return tx.tx.ExecContext(tx.ctx, query, args...)
}

func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	tx.countStatement()
	if st := tx.stmt(query); st != nil {
		return st.QueryRowContext(tx.ctx, args...)
	}
	return tx.tx.QueryRowContext(tx.ctx, query, args...)
}

func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	tx.countStatement()
	if st := tx.stmt(query); st != nil {
		return st.QueryContext(tx.ctx, args...)
	}
	return tx.tx.QueryContext(tx.ctx, query, args...)
}

// ReadOnly reports whether tx is a View transaction.
func (tx *Tx) ReadOnly() bool { return tx.readOnly }

// Now is the transaction's clock reading, used for the timestamps it writes.
func (tx *Tx) Now() time.Time { return tx.now }

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetClock replaces the clock of the timestamps transactions write (tests
// inject one).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Now is the store's clock (what Tx.Now gives a transaction begun now).
func (s *Store) Now() time.Time { return s.now() }
