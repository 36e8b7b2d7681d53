package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/quicproquo/quicproquo/node/store"
)

// Defaults applied to zero fields of store.Limits.
const (
	DefaultMaxKeyPackages = 100
	DefaultMaxQueueDepth  = 10000
)

// DedupRetention is how long the store remembers a (recipient, sender, client
// message id) after the enqueue, so that a retried Enqueue is recognised as a
// duplicate even after the message was acknowledged and deleted. Older entries
// are pruned at Open and then every PruneInterval.
const DedupRetention = 7 * 24 * time.Hour

// PruneInterval is how often an open store prunes expired deduplication entries.
const PruneInterval = time.Hour

// busyTimeout bounds how long a connection waits for a lock held by another
// process sharing the file (in one process, writes are already serialised).
const busyTimeout = 10 * time.Second

// readConns is the size of the read-only connection pool.
const readConns = 4

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use; create it with Open and release it with Close.
type Store struct {
	path   string
	log    *slog.Logger
	limits store.Limits
	now    func() time.Time // the clock; replaced only by tests

	// mu guards closed. Every method holds it for reading while it works, so
	// Close (which takes it for writing) waits for work in flight and every
	// later call reports store.ErrClosed.
	mu     sync.RWMutex
	closed bool

	w *sql.DB // one connection, BEGIN IMMEDIATE: every write goes through it
	r *sql.DB // a small pool of query_only connections for reads

	receiveStmt  *sql.Stmt            // receiveQuery on r
	lastSeqStmt  *sql.Stmt            // lastSeqQuery on r (every subscribe and ack)
	strangerStmt *sql.Stmt            // strangerQuery on w
	hot          map[string]*sql.Stmt // the write path's statements on w (stmts.go)

	writes     chan *writeReq // to writeLoop; closed by Close
	writerDone chan struct{}
	commits    atomic.Int64 // write transactions committed (read by tests)
	qc         queueCache   // the writer's memory of queues (queuecache.go)

	stopPrune chan struct{}
	pruneDone chan struct{}

	// The background checkpoints (checkpoint.go).
	ckptKick   chan struct{} // a commit happened (one waits)
	stopCkpt   chan struct{}
	ckptDone   chan struct{}
	finishCkpt atomic.Bool  // the writer should copy what a checkpoint left
	ckpts      atomic.Int64 // background checkpoints run (read by tests)
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, applies any pending
// schema migrations and returns the store. A missing parent folder is created
// with mode 0700 and a new database file with mode 0600. Zero fields of limits
// take the defaults (DefaultMaxKeyPackages, DefaultMaxQueueDepth); negative
// ones are refused. A nil logger discards. Open refuses a database written by
// a newer version of this program (ErrSchemaTooNew).
func Open(ctx context.Context, path string, limits store.Limits, logger *slog.Logger) (*Store, error) {
	return OpenOptions(ctx, path, limits, Options{}, logger)
}

// Options tunes a store beyond its limits. The zero value is the default.
type Options struct {
	// WriterCacheMiB is the writer connection's page cache in MiB; zero
	// takes DefaultWriterCacheMiB. A full cache costs about twice its
	// size in resident memory (measured: 16 MiB raised a qpnode's by
	// 26-28 MiB), outside the Go heap and the node's RPC budget. A
	// cache that holds a whole batch (a 1000-member fan-out dirties a few
	// thousand pages) keeps SQLite from spilling dirty pages to the WAL
	// in the middle of a transaction and reading them back.
	WriterCacheMiB int
}

// DefaultWriterCacheMiB is SQLite's own default page cache (2000 KiB,
// rounded), which keeps the node within its memory bounds.
const DefaultWriterCacheMiB = 2

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, path string, limits store.Limits, opts Options, logger *slog.Logger) (*Store, error) {
	if opts.WriterCacheMiB < 0 {
		return nil, fmt.Errorf("sqlite: open: negative writer cache %d MiB: %w", opts.WriterCacheMiB, store.ErrInvalid)
	}
	if opts.WriterCacheMiB == 0 {
		opts.WriterCacheMiB = DefaultWriterCacheMiB
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, fmt.Errorf("sqlite: open: empty path: %w", store.ErrInvalid)
	}
	if limits.MaxKeyPackages < 0 || limits.MaxQueueDepth < 0 {
		return nil, fmt.Errorf("sqlite: open: negative limit %+v: %w", limits, store.ErrInvalid)
	}
	if limits.MaxKeyPackages == 0 {
		limits.MaxKeyPackages = DefaultMaxKeyPackages
	}
	if limits.MaxQueueDepth == 0 {
		limits.MaxQueueDepth = DefaultMaxQueueDepth
	}
	if err := limits.CheckQuotas(limits.MaxQueueDepth); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := prepareFile(path, logger); err != nil {
		return nil, err
	}

	w, err := openDB(path, false, opts.WriterCacheMiB)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	// Journal mode is a property of the file, set once on the writer.
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: set WAL mode: %w", path, err)
	}
	if mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: journal mode is %q, want wal", path, mode)
	}
	version, err := migrate(ctx, w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	// Every direct enqueue asks whether its sender is a stranger: parse
	// that statement once.
	strangerStmt, err := w.PrepareContext(ctx, strangerQuery)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: prepare: %w", path, err)
	}
	hot, err := prepareHot(ctx, w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r, err := openDB(path, true, 0)
	if err != nil {
		w.Close()
		return nil, err
	}
	ckpt, err := openDB(path, false, 1)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)
	ckpt.SetConnMaxLifetime(0)
	ckpt.SetConnMaxIdleTime(0)
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	receiveStmt, err := r.PrepareContext(ctx, receiveQuery)
	if err != nil {
		w.Close()
		r.Close()
		ckpt.Close()
		return nil, fmt.Errorf("sqlite: open %s: prepare: %w", path, err)
	}
	lastSeqStmt, err := r.PrepareContext(ctx, lastSeqQuery)
	if err != nil {
		receiveStmt.Close()
		w.Close()
		r.Close()
		ckpt.Close()
		return nil, fmt.Errorf("sqlite: open %s: prepare: %w", path, err)
	}

	s := &Store{
		path:         path,
		log:          logger,
		limits:       limits,
		now:          time.Now,
		w:            w,
		r:            r,
		receiveStmt:  receiveStmt,
		lastSeqStmt:  lastSeqStmt,
		strangerStmt: strangerStmt,
		hot:          hot,
		writes:       make(chan *writeReq),
		writerDone:   make(chan struct{}),
		stopPrune:    make(chan struct{}),
		pruneDone:    make(chan struct{}),
		ckptKick:     make(chan struct{}, 1),
		stopCkpt:     make(chan struct{}),
		ckptDone:     make(chan struct{}),
	}
	if _, err := s.prune(ctx); err != nil {
		w.Close()
		r.Close()
		ckpt.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	go s.writeLoop()
	go s.pruneLoop()
	go s.checkpointLoop(ckpt)
	logger.Info("store opened", "path", path, "schema_version", version,
		"max_key_packages", limits.MaxKeyPackages, "max_queue_depth", limits.MaxQueueDepth)
	return s, nil
}

// prepareFile creates the folder (0700) and the database file (0600) when they
// are missing, and tightens the mode of an existing file that others can read.
func prepareFile(path string, logger *slog.Logger) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlite: open %s: create folder: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("sqlite: open %s: not a regular file: %w", path, store.ErrInvalid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(path, perm&0o700); err != nil {
			return fmt.Errorf("sqlite: open %s: restrict mode: %w", path, err)
		}
		logger.Warn("store file was readable by others; mode restricted",
			"path", path, "old_mode", fs.FileMode(perm).String())
	}
	return nil
}

// openDB opens a database/sql handle on path. Every connection it makes waits
// up to busyTimeout for locks, runs synchronous=FULL (a commit returns only
// once it is on disk), keeps temporary data in memory and enforces foreign
// keys. Writers begin transactions
// IMMEDIATE, so two writers never deadlock upgrading a read lock; readers are
// query_only. The writer's page cache is cacheMiB (readers keep SQLite's
// default).
func openDB(path string, readOnly bool, cacheMiB int) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Statement journals and savepoints (one per call of a group commit)
	// live in memory instead of a temporary file: they only undo work
	// inside an open transaction and play no part in crash recovery, and
	// writing them cost a pwrite per page touched.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheMiB<<10))
		// The checkpoints run in the background (checkpoint.go); this
		// one only backs them up.
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", backstopCheckpointPages))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// Close stops background work and closes the database. It waits for calls in
// flight; every later call returns store.ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// No call is in flight (each holds mu for reading until it has its
	// answer), so the writer has nothing left to do.
	close(s.writes)
	<-s.writerDone
	close(s.stopPrune)
	<-s.pruneDone
	close(s.stopCkpt)
	<-s.ckptDone
	err := errors.Join(s.receiveStmt.Close(), s.lastSeqStmt.Close(), s.strangerStmt.Close(), closeStmts(s.hot), s.r.Close(), s.w.Close())
	if err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.path, err)
	}
	s.log.Info("store closed", "path", s.path)
	return nil
}

// enter marks the start of a call; the returned function marks its end.
func (s *Store) enter(op string) (func(), error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("sqlite: %s: %w", op, store.ErrClosed)
	}
	return s.mu.RUnlock, nil
}

// read runs fn in one read transaction on a reader connection, so that it
// sees a single snapshot.
func (s *Store) read(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	leave, err := s.enter(op)
	if err != nil {
		return err
	}
	defer leave()
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", op, err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// pruneLoop prunes expired deduplication entries every PruneInterval until Close.
func (s *Store) pruneLoop() {
	defer close(s.pruneDone)
	t := time.NewTicker(PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopPrune:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, err := s.prune(ctx); err != nil {
				s.log.Warn("pruning deduplication entries failed", "err", err)
			}
			cancel()
		}
	}
}

// prune deletes deduplication entries older than DedupRetention and reports
// how many it deleted. It does not take s.mu: Open calls it before the store
// is shared, and pruneLoop is stopped by Close before the handles close.
func (s *Store) prune(ctx context.Context) (int64, error) {
	cutoff := s.now().Add(-DedupRetention).UnixNano()
	var total int64
	for _, q := range pruneStatements {
		res, err := s.w.ExecContext(ctx, q, cutoff)
		if err != nil {
			return total, fmt.Errorf("prune deduplication entries: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	if total > 0 {
		s.log.Debug("pruned deduplication entries", "count", total)
	}
	return total, nil
}
