package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quicproquo/quicproquo/node/store"
)

// Defaults for the zero fields of store.Limits.
const (
	DefaultMaxKeyPackages = 100
	DefaultMaxQueueDepth  = 10000
)

// DedupRetention is how long the store remembers a client message id after
// the enqueue or group submission that used it, so that a retry is
// recognised as a duplicate even after the message was acknowledged and
// deleted. Older entries are pruned at Open and then every PruneInterval.
const DedupRetention = 7 * 24 * time.Hour

// PruneInterval is how often an open store prunes expired deduplication entries.
const PruneInterval = time.Hour

// maxAttempts bounds how often a transaction that PostgreSQL aborted as a
// deadlock or serialization failure is run again.
const maxAttempts = 5

// Store is the PostgreSQL implementation of store.Store and store.Notifier.
// It is safe for concurrent use, also by several processes sharing one
// database; create it with Open and release it with Close.
type Store struct {
	pool   *pgxpool.Pool
	listen *pgx.ConnConfig // for the LISTEN connections of Notifications
	log    *slog.Logger
	limits store.Limits
	now    func() time.Time // the clock; replaced only by tests

	sweepEvery time.Duration // SweepInterval; shortened only by tests

	// mu guards closed. Every method holds it for reading while it works,
	// so Close (which takes it for writing, after cancelling them) waits
	// for work in flight and every later call reports store.ErrClosed.
	mu     sync.RWMutex
	closed bool

	// closing ends when Close starts: it cancels the calls in flight (their
	// waits for the database included, a commit's answer too), so Close
	// does not wait on a database that stopped answering. A call cut off
	// so has an outcome its caller cannot know; the caller's connection is
	// closing with the node, and a client retries what was not answered.
	closing context.Context
	stop    context.CancelFunc

	done      chan struct{} // closed by Close: stops pruning and Notifications
	pruneDone chan struct{}

	announced    chan []byte    // recipients to announce (see announce.go)
	enqueuing    atomic.Int64   // Enqueue calls in flight
	announceDone chan struct{}  // closed when the announcer has sent the last
	listeners    sync.WaitGroup // Notifications calls in progress
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)

// DefaultMaxConns is the size of a node's connection pool when the
// connection string does not set pool_max_conns. PostgreSQL commits the
// transactions that wait for the log's flush together, one fsync for all
// of them; so the more writes are in flight at once, the more share each
// flush. pgxpool's own default (4, or the number of CPUs) would cap that
// at four on a small machine; 16 leaves room for several nodes within
// PostgreSQL's default max_connections (100).
const DefaultMaxConns = 16

// Open connects to the database named by connString (a libpq-style
// keyword/value string or a postgres:// URL; pgxpool's pool_* settings are
// honoured), applies any pending schema migrations and returns the store.
// Zero fields of limits take the defaults (DefaultMaxKeyPackages,
// DefaultMaxQueueDepth); negative ones are refused. A nil logger discards.
// Open refuses a database migrated by a newer version of this program
// (ErrSchemaTooNew).
func Open(ctx context.Context, connString string, limits store.Limits, logger *slog.Logger) (*Store, error) {
	return open(ctx, connString, limits, logger, nil)
}

// open is Open with a tracer on every connection of the pool (nil: none),
// through which tests count the statements a call sends.
func open(ctx context.Context, connString string, limits store.Limits, logger *slog.Logger, tracer pgx.QueryTracer) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if connString == "" {
		return nil, fmt.Errorf("postgres: open: empty connection string: %w", store.ErrInvalid)
	}
	if limits.MaxKeyPackages < 0 || limits.MaxQueueDepth < 0 {
		return nil, fmt.Errorf("postgres: open: negative limit %+v: %w", limits, store.ErrInvalid)
	}
	if limits.MaxKeyPackages == 0 {
		limits.MaxKeyPackages = DefaultMaxKeyPackages
	}
	if limits.MaxQueueDepth == 0 {
		limits.MaxQueueDepth = DefaultMaxQueueDepth
	}
	if err := limits.CheckQuotas(limits.MaxQueueDepth); err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's message leaves out any password it finds.
		return nil, fmt.Errorf("postgres: open: %w: %w", store.ErrInvalid, err)
	}
	if !strings.Contains(connString, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	// A commit is acknowledged only once it is durable, whatever the
	// server's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "qpnode"
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer
	}
	listen := cfg.ConnConfig.Copy()

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	version, err := migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	s := &Store{
		pool:       pool,
		listen:     listen,
		log:        logger,
		limits:     limits,
		now:        time.Now,
		sweepEvery: SweepInterval,
		done:       make(chan struct{}),
		pruneDone:  make(chan struct{}),

		announced:    make(chan []byte, announceQueue),
		announceDone: make(chan struct{}),
	}
	s.closing, s.stop = context.WithCancel(context.Background())
	if _, err := s.prune(ctx); err != nil {
		s.stop()
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	go s.pruneLoop()
	go s.announceLoop()
	logger.Info("store opened", "backend", "postgres", "database", where, "schema_version", version,
		"max_key_packages", limits.MaxKeyPackages, "max_queue_depth", limits.MaxQueueDepth)
	return s, nil
}

// Close stops background work and closes the connections. It cancels the
// calls in flight and waits for them to return; every later call returns
// store.ErrClosed, and running Notifications calls return store.ErrClosed.
// With the database unreachable it returns within a few seconds
// (announceCloseGrace, poolCloseGrace). Closing twice is harmless.
func (s *Store) Close() error {
	s.stop()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	<-s.pruneDone
	<-s.announceDone
	s.listeners.Wait()
	// A connection whose call Close cut off is closed by pgx with a cancel
	// request and a wait for the server, up to 15 s each when the server
	// stopped answering: those finish in the background.
	pooled := make(chan struct{})
	go func() {
		s.pool.Close()
		close(pooled)
	}()
	select {
	case <-pooled:
	case <-time.After(poolCloseGrace):
		s.log.Warn("the database does not answer; its connections close in the background")
	}
	s.log.Info("store closed", "backend", "postgres")
	return nil
}

// poolCloseGrace is how long Close waits for the pool's connections.
const poolCloseGrace = 2 * time.Second

// enter marks the start of a call; the returned function marks its end.
// The call runs with the returned context, ctx ended by Close too.
func (s *Store) enter(ctx context.Context, op string) (context.Context, func(), error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, nil, fmt.Errorf("postgres: %s: %w", op, store.ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.closing, cancel)
	return ctx, func() {
		unhook()
		cancel()
		s.mu.RUnlock()
	}, nil
}

// detached is ctx without its cancellation, for a wait that must not be
// abandoned when the caller gives up (a commit's answer); Close still ends
// it. Call release when done.
func (s *Store) detached(ctx context.Context) (_ context.Context, release func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(s.closing, cancel)
	return ctx, func() {
		unhook()
		cancel()
	}
}

// errRollback ends a transaction without committing it, successfully: the
// call found that it has nothing to store (a duplicate).
var errRollback = errors.New("roll back")

// write runs fn in a READ COMMITTED transaction and commits it; it returns
// only after the commit is durable (synchronous_commit is on). fn locks
// what it changes (see "Concurrency" in the package documentation). A
// transaction that PostgreSQL aborts as a deadlock or serialization
// failure is run again from the start, so fn must not keep results of an
// earlier attempt. fn returning errRollback rolls back and reports success.
// Errors of fn are returned as they are.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, leave, err := s.enter(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, op, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		s.log.Debug("transaction aborted by the server; running it again", "op", op, "attempt", attempt, "err", err)
	}
}

func (s *Store) attempt(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", op, err)
	}
	if err := fn(ctx, tx); err != nil {
		dctx, release := s.detached(ctx)
		rerr := tx.Rollback(dctx)
		release()
		if errors.Is(err, errRollback) {
			if rerr != nil {
				return fmt.Errorf("postgres: %s: roll back: %w", op, rerr)
			}
			return nil
		}
		return err
	}
	// Once the COMMIT is sent, wait for its answer rather than abandon it
	// on the caller's cancellation: a commit whose outcome is unknown would
	// be reported as a failure although it may have happened. Only Close
	// ends the wait (see closing).
	dctx, release := s.detached(ctx)
	defer release()
	if err := tx.Commit(dctx); err != nil {
		return fmt.Errorf("postgres: %s: commit: %w", op, err)
	}
	return nil
}

// errRerun asks single to run its statement again: what it found was
// overtaken by a concurrent call that committed after its snapshot.
var errRerun = errors.New("overtaken by a concurrent call")

// single runs fn, which sends one statement on conn: that statement is its
// own transaction, committed by the server before it answers, so the call
// costs one round trip where BEGIN, statement and COMMIT cost three. It
// returns only after the commit is durable. ctx bounds the wait for a
// connection; once the statement is sent the call waits for its answer
// (its commit) rather than abandon it on the caller's cancellation (only
// Close ends it), as write does for a COMMIT. A deadlock, a serialization failure, errRerun and what
// rerun accepts run the statement again, up to maxAttempts in all; after
// that errRerun is returned as it is.
func (s *Store) single(ctx context.Context, op string, rerun func(error) bool, fn func(ctx context.Context, conn *pgxpool.Conn) error) error {
	ctx, leave, err := s.enter(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	defer conn.Release()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		dctx, release := s.detached(ctx)
		err := fn(dctx, conn)
		release()
		if err == nil || attempt == maxAttempts || !(retryable(err) || errors.Is(err, errRerun) || rerun(err)) {
			return err
		}
		s.log.Debug("statement overtaken or aborted by the server; running it again", "op", op, "attempt", attempt, "err", err)
	}
}

// uniqueViolation reports a unique violation of the named constraint.
func uniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

// retryable reports a deadlock or serialization failure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// read runs fn with the pool, for calls that read one consistent snapshot
// in a single statement.
func (s *Store) read(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	ctx, leave, err := s.enter(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	return fn(ctx)
}

// pruneLoop prunes expired deduplication entries every PruneInterval until Close.
func (s *Store) pruneLoop() {
	defer close(s.pruneDone)
	t := time.NewTicker(PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(s.closing, time.Minute)
			if _, err := s.prune(ctx); err != nil {
				s.log.Warn("pruning deduplication entries failed", "err", err)
			}
			cancel()
		}
	}
}

// prune deletes deduplication entries older than DedupRetention and reports
// how many it deleted. Several nodes pruning at once is harmless.
func (s *Store) prune(ctx context.Context) (int64, error) {
	cutoff := s.now().Add(-DedupRetention)
	var total int64
	for _, q := range pruneStatements {
		tag, err := s.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return total, fmt.Errorf("prune deduplication entries: %w", err)
		}
		total += tag.RowsAffected()
	}
	if total > 0 {
		s.log.Debug("pruned deduplication entries", "count", total)
	}
	return total, nil
}
