package backend

import (
	"context"
	"errors"
	"sync"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/panicstack"
)

// Sends from the API share transactions (group commit). Each send is
// durable before it is answered, one fsync each if they ran one after
// the other; instead, the sends that arrive while one transaction runs
// wait and then run together in the next, each inside its own savepoint,
// and one commit makes them all durable. A send that fails rolls back
// alone (its savepoint); the others commit. A send that arrives alone
// runs alone, as before, and waits for nobody: batching only takes what
// queued up while the disk was busy.

// A batch first runs without the savepoints, which cost a send about a
// tenth of its work (two statements and their bookkeeping): if every send
// succeeds, it commits as it is; if one fails, the whole transaction rolls
// back and the batch runs again with a savepoint per send. Nothing of a
// rolled-back transaction has left qpd (the outbox sender reads only what
// committed, and the groups decoded in it are dropped), so running the
// sends again encrypts nothing twice that anyone sees.

// maxSendBatch bounds the sends of one transaction (and so how long gmu
// is held at once).
const maxSendBatch = 64

// sendQueue holds the sends waiting for the next transaction.
type sendQueue struct {
	mu      sync.Mutex
	waiting []*sendReq
	running bool // a drainSends goroutine is running
}

// sendReq is one send waiting for its transaction.
type sendReq struct {
	ctx  context.Context
	run  func(*store.Tx) (SendResult, error)
	res  SendResult
	err  error
	done chan struct{}
}

// sendBatched runs run (which must hold to what gmu allows) in a write
// transaction, possibly together with other sends, and returns once that
// transaction has committed or failed. meanwhile, if not nil, runs on the
// caller's goroutine: once the send is queued if no other send is queued or
// running (so that it overlaps the transaction's start), before queueing it
// otherwise (so that the batch it joins waits for nothing). run may wait
// for meanwhile, which must not wait for gmu or the store.
func (b *Backend) sendBatched(ctx context.Context, run func(*store.Tx) (SendResult, error), meanwhile func()) (SendResult, error) {
	r := &sendReq{ctx: ctx, run: run, done: make(chan struct{})}
	q := &b.sends
	q.mu.Lock()
	if meanwhile != nil && (q.running || len(q.waiting) > 0) {
		q.mu.Unlock()
		meanwhile()
		meanwhile = nil
		q.mu.Lock()
	}
	q.waiting = append(q.waiting, r)
	if !q.running {
		q.running = true
		go b.drainSends()
	}
	q.mu.Unlock()
	if meanwhile != nil {
		meanwhile()
	}
	// Once queued, the send may be committed: wait for the answer rather
	// than report a cancellation that might not be true.
	<-r.done
	return r.res, r.err
}

// drainSends runs the waiting sends, a batch per transaction, until none
// waits.
func (b *Backend) drainSends() {
	q := &b.sends
	for {
		q.mu.Lock()
		n := min(len(q.waiting), maxSendBatch)
		if n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch := q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		q.mu.Unlock()
		b.runSendBatch(batch)
	}
}

// runSendBatch runs batch in one transaction and answers each send.
func (b *Backend) runSendBatch(batch []*sendReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	b.gmu.Lock()
	defer b.gmu.Unlock()
	if len(batch) == 1 {
		r := batch[0]
		r.err = b.update(r.ctx, func(tx *store.Tx) (err error) {
			r.res, err = b.runSend(tx, r)
			return err
		})
		if r.err != nil {
			r.res = SendResult{}
		}
		return
	}
	err := b.runSends(batch, false)
	if errors.Is(err, errSendFailed) {
		err = b.runSends(batch, true)
	}
	if err != nil {
		for _, r := range batch {
			if r.err == nil {
				r.res, r.err = SendResult{}, err
			}
		}
	}
}

// runSends runs the sends of batch in one transaction. Without savepoints,
// a failing send rolls the whole transaction back (errSendFailed); with
// them, it is rolled back alone and the others commit.
func (b *Backend) runSends(batch []*sendReq, savepoints bool) error {
	return b.update(context.Background(), func(tx *store.Tx) error {
		for _, r := range batch {
			r.res, r.err = SendResult{}, r.ctx.Err()
			if r.err != nil {
				continue // given up before its turn: not sent
			}
			if !savepoints {
				if r.res, r.err = b.runSend(tx, r); r.err != nil {
					return errSendFailed
				}
				continue
			}
			r.err = tx.Savepoint(func(tx *store.Tx) (err error) {
				r.res, err = b.runSend(tx, r)
				return err
			})
			if r.err != nil {
				r.res = SendResult{}
			}
		}
		return nil // a broken savepoint fails the commit (store.Tx.Savepoint)
	})
}

// errSendFailed rolls back a batch run without savepoints in which a send
// failed, for the run with them.
var errSendFailed = errors.New("a send of the batch failed")

// errSendPanicked answers a send whose transaction panicked.
var errSendPanicked = errors.New("internal error in send; qpd keeps serving")

// runSend runs r in tx. A panic in it (a bug some input reaches) fails
// that send alone, its writes rolled back, instead of ending the daemon:
// the sends run on a goroutine of their own, out of reach of the API's
// own recovery. The log names where it happened, without values.
func (b *Backend) runSend(tx *store.Tx, r *sendReq) (res SendResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("panic in send", "stack", panicstack.Where())
			res, err = SendResult{}, errSendPanicked
		}
	}()
	return r.run(tx)
}
