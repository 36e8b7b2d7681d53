package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Writes are group-committed. Every write call hands its work to one writer
// goroutine, which runs the calls waiting at that moment (up to
// maxWriteBatch) in one IMMEDIATE transaction, each inside its own
// savepoint (or none, see writeBare), and commits once: one fsync answers
// them all. A call whose work fails is rolled back to its savepoint and
// gets its own error; the others are unaffected. Each call returns only after the commit that holds its
// work is on disk, so acknowledging a client at return stays safe; a failed
// commit fails every call of the batch.
//
// The work of a call runs with the caller's context values but not its
// cancellation: SQLite answers an interrupted statement inside a
// transaction by rolling back the whole transaction, which would take the
// other calls' work with it. A call whose context is done before its work
// starts is not run.

// A call made with writeBare runs without a savepoint, which costs two
// statements and a copy of every page the call is first to change. Its
// work must refuse before it writes anything, or undo what it wrote, and
// then return the refusal as a *refusal (itself, not wrapped). Any other
// error of such a call (a failed statement) may leave its writes behind,
// so the writer rolls the batch back and runs it again with every call in
// its savepoint: the failure stays the call's own, and a call that keeps
// failing costs its batch a second run, not its answers. The work of a
// call must therefore be safe to run twice (it is: it reads and writes
// only the transaction).

// refusal is the error of a call that wrote nothing, or undid all it
// wrote: the batch goes on without it.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// The savepoint of each call of a batch.
var (
	savepointCall = hot(`SAVEPOINT call`)
	rollbackCall  = hot(`ROLLBACK TO call`)
	releaseCall   = hot(`RELEASE call`)
)

// maxWriteBatch bounds the calls committed together.
const maxWriteBatch = 256

// writeReq is one write call waiting for the writer.
type writeReq struct {
	ctx  context.Context
	op   string
	fn   func(ctx context.Context, tx *sql.Tx) error
	bare bool // no savepoint (see writeBare)
	done chan error
}

// write runs fn in a write transaction (shared with other calls, see above)
// and returns once that transaction is committed. Errors from fn are
// returned as they are, after fn's work is rolled back.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.submit(ctx, op, fn, false)
}

// writeBare is write for work that undoes itself when it refuses (see
// refusal): it runs without a savepoint. Its error is the refusal's, or
// the batch's when fn failed otherwise.
func (s *Store) writeBare(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.submit(ctx, op, fn, true)
}

// submit hands a call to the writer and waits for its answer.
func (s *Store) submit(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error, bare bool) error {
	leave, err := s.enter(op)
	if err != nil {
		return err
	}
	defer leave()
	req := &writeReq{ctx: ctx, op: op, fn: fn, bare: bare, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
	}
	// Once handed over, the work may be committed: wait for the answer
	// rather than report a cancellation that might not be true.
	return <-req.done
}

// Commits is the number of write transactions committed since Open: beside
// a count of write calls it says how many calls shared each fsync.
func (s *Store) Commits() int64 { return s.commits.Load() }

// writeLoop runs the write calls until Close closes s.writes.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	for req := range s.writes {
		batch := []*writeReq{req}
	more:
		for len(batch) < maxWriteBatch {
			select {
			case r, ok := <-s.writes:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.runBatch(batch)
		s.finishCheckpoint()
	}
}

// runBatch runs the calls of batch in one transaction and answers each.
func (s *Store) runBatch(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("sqlite: %s: %w", r.op, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	s.runLive(live, true)
}

// runLive runs live, calls whose contexts were not done, in one
// transaction and answers each; bare says whether the calls made with
// writeBare may run without their savepoints.
func (s *Store) runLive(live []*writeReq, bare bool) {
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err == nil {
		if err = s.qc.sync(context.Background(), tx, s); err != nil {
			_ = tx.Rollback()
		}
	}
	if err != nil {
		for _, r := range live {
			r.done <- fmt.Errorf("sqlite: %s: begin: %w", r.op, err)
		}
		return
	}
	if len(live) == 1 {
		// Alone: no savepoint needed.
		r := live[0]
		if err := r.fn(context.WithoutCancel(r.ctx), tx); err != nil {
			_ = tx.Rollback()
			s.qc.rolledBack()
			r.done <- unrefused(err)
			return
		}
		if err := tx.Commit(); err != nil {
			s.qc.rolledBack()
			r.done <- fmt.Errorf("sqlite: %s: commit: %w", r.op, err)
			return
		}
		s.qc.committed()
		s.commits.Add(1)
		s.kickCheckpoint()
		r.done <- nil
		return
	}
	errs := make([]error, len(live))
	var broken error // the transaction can no longer be trusted
	for i, r := range live {
		ctx := context.WithoutCancel(r.ctx)
		if bare && r.bare {
			err := r.fn(ctx, tx)
			if no, ok := err.(*refusal); ok {
				errs[i] = no.err
				continue
			}
			if err != nil {
				// Nothing can undo what the call wrote: run the batch
				// again, every call in its savepoint, so that its
				// failure stays its own.
				rerr := tx.Rollback()
				s.qc.rolledBack()
				if rerr != nil {
					broken = fmt.Errorf("roll back a failed call: %w (after %w)", rerr, err)
					break
				}
				s.runLive(live, false)
				return
			}
			continue
		}
		if _, err := s.exec(ctx, tx, savepointCall); err != nil {
			broken = fmt.Errorf("savepoint: %w", err)
			break
		}
		if errs[i] = r.fn(ctx, tx); errs[i] != nil {
			s.qc.rolledBack()
			if _, err := s.exec(ctx, tx, rollbackCall); err != nil {
				broken = fmt.Errorf("roll back a failed call: %w (after %w)", err, errs[i])
				break
			}
		}
		if _, err := s.exec(ctx, tx, releaseCall); err != nil {
			broken = fmt.Errorf("release savepoint: %w", err)
			break
		}
	}
	if broken == nil {
		if err := tx.Commit(); err != nil {
			broken = fmt.Errorf("commit: %w", err)
			s.qc.rolledBack()
		} else {
			s.qc.committed()
			s.commits.Add(1)
			s.kickCheckpoint()
		}
	} else {
		broken = errors.Join(broken, tx.Rollback())
		s.qc.rolledBack()
	}
	for i, r := range live {
		switch {
		case broken != nil:
			r.done <- fmt.Errorf("sqlite: %s: %w", r.op, broken)
		default:
			r.done <- errs[i]
		}
	}
}

// unrefused returns a refusal's error without the marker, which only the
// writer reads, and any other error as it is.
func unrefused(err error) error {
	if no, ok := err.(*refusal); ok {
		return no.err
	}
	return err
}
