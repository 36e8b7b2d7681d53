package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"github.com/quicproquo/quicproquo/internal/panicstack"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file is the daemon's side of the node queues: receiving (push from
// the node, applied in one transaction with the cursor, acknowledged after
// commit) and sending (the outbox, delivered while connected).

// EnvelopeHandler applies the envelopes of this user's node queue. It is
// the seam where the MLS group state machine plugs in.
type EnvelopeHandler interface {
	// HandleEnvelope applies env inside tx, the transaction that also
	// advances the node cursor past env: it records what env changes
	// (group state, messages, events, welcomes) through tx and nothing
	// else. An error wrapping ErrRejectEnvelope says env can never apply
	// (malformed, a commit that lost its epoch, ...): its writes are rolled
	// back, the cursor moves past it, and it is logged. Any other error
	// rolls back and env is delivered again after a reconnect.
	HandleEnvelope(ctx context.Context, tx *store.Tx, env nodeclient.Envelope) error
}

// ErrRejectEnvelope marks an envelope that can never be applied.
var ErrRejectEnvelope = errors.New("envelope rejected")

// errRejected rolls back a rejected envelope's writes.
var errRejected = errors.New("rejected")

// maxApplyBatch bounds the envelopes applied in one transaction (and so
// how long gmu is held at once).
const maxApplyBatch = 64

// applyEnvelope applies env and advances the cursor in one transaction. It
// reports whether env was new.
func (b *Backend) applyEnvelope(ctx context.Context, env nodeclient.Envelope) (bool, error) {
	n, _, err := b.applyEnvelopes(ctx, []nodeclient.Envelope{env})
	return n == 1, err
}

// applyEnvelopes applies envs in order in one transaction, one commit for
// them all, each inside its own savepoint, and advances the cursor past
// each one it applied or rejected: a rejected envelope's writes are rolled
// back alone. Any other failure stops at that envelope: what came before
// it is committed, it and the rest are delivered again after a reconnect.
// It reports how many envelopes were new and the cursor it committed (0
// when the transaction failed).
//
// A lone envelope, the usual push, takes no savepoint (two statements):
// the transaction holds nothing else, so a failure rolls all of it back,
// and a rejected envelope is then recorded, without its writes, by a
// second transaction that only advances the cursor past it.
func (b *Backend) applyEnvelopes(ctx context.Context, envs []nodeclient.Envelope) (applied int, cursor uint64, err error) {
	b.gmu.Lock()
	defer b.gmu.Unlock()
	type rejection struct {
		env nodeclient.Envelope
		err error
	}
	var rejected []rejection
	var stop error
	var receipts []pendingReceipt
	b.receiptBatch = &receipts
	defer func() { b.receiptBatch = nil }()
	lone := len(envs) == 1
	var loneReject error // the lone envelope's rejection, for the second transaction
	seenBefore := 0
	apply := func(tx *store.Tx) error {
		applied, rejected, stop, seenBefore = 0, nil, nil, 0
		receipts = receipts[:0]
		cur, err := tx.NodeCursor()
		if err != nil {
			return err
		}
		start := cur
		for _, env := range envs {
			if env.Seq <= cur {
				continue // delivered again after a reconnect: already applied
			}
			var rejectErr error
			ok := false
			noted := len(receipts)
			one := func(tx *store.Tx) error {
				var err error
				ok, rejectErr, err = b.applyOne(ctx, tx, env)
				return err
			}
			switch {
			case loneReject != nil:
				rejectErr, err = loneReject, errRejected
			case lone:
				if err = one(tx); err != nil {
					if errors.Is(err, errRejected) {
						loneReject = rejectErr
					}
					return err // all of the transaction rolls back
				}
			default:
				err = tx.Savepoint(one)
			}
			if err != nil {
				receipts = receipts[:noted] // rolled back with the envelope
			}
			if err != nil && !errors.Is(err, errRejected) {
				stop = err
				break
			}
			if rejectErr != nil && env.Seq <= b.reread.Load() {
				// Read again from a node restored from a backup: most
				// likely applied before (a replay to MLS), and no event
				// for the user.
				seenBefore++
			} else if rejectErr != nil {
				rejected = append(rejected, rejection{env, rejectErr})
				if b.recordReject(tx, env) {
					if err := rejectedEvent(tx, env, rejectErr); err != nil {
						return err
					}
				}
			}
			if ok {
				applied++
			}
			cur = env.Seq
		}
		// The cursor moves once, past every envelope the transaction
		// took: it commits with them or not at all.
		if cur > start {
			if err := tx.SetNodeCursor(cur); err != nil {
				return err
			}
		}
		cursor = cur
		return b.oweReceipts(tx, receipts)
	}
	err = b.update(ctx, apply)
	if loneReject != nil && errors.Is(err, errRejected) {
		err = b.update(ctx, apply) // the rejection alone, past the envelope
	}
	if err != nil {
		return 0, 0, err
	}
	if len(receipts) > 0 {
		b.scheduleReceipts(b.cfg.ReceiptDelay)
	}
	for _, r := range rejected {
		b.log.Warn("envelope rejected", "seq", r.env.Seq, "sender", FormatKey(r.env.Sender), "err", r.err)
	}
	if seenBefore > 0 {
		b.log.Info("envelopes the node delivered again after falling behind were refused, as applied before", "envelopes", seenBefore)
	}
	return applied, cursor, stop
}

// applyOne applies env inside tx (a savepoint of the batch's transaction,
// or the transaction of a lone envelope)
// without advancing the cursor. It reports whether env was new, or why it
// is rejected (its writes are then rolled back: errRejected); any other
// error means env must be delivered again.
func (b *Backend) applyOne(ctx context.Context, tx *store.Tx, env nodeclient.Envelope) (applied bool, rejectErr, err error) {
	if b.dropEnvelope != nil && b.dropEnvelope(env) {
		return false, nil, nil
	}
	if nodeclient.IsNodeNotice(env) {
		if bytes.Equal(env.Payload, nodeclient.NoticeKeyPackagesLow) {
			b.keyPackagesLow()
		}
		return false, nil, nil
	}
	if err := b.handleEnvelope(ctx, tx, env); err != nil {
		if errors.Is(err, ErrRejectEnvelope) {
			return false, err, errRejected
		}
		return false, nil, fmt.Errorf("apply envelope %d: %w", env.Seq, err)
	}
	return true, nil, nil
}

// handleEnvelope runs the envelope handler. A panic in it (a bug that some
// input reaches) rejects the envelope instead of ending the daemon, which
// would meet the same envelope again after every restart. The log names
// where it happened, without argument values.
func (b *Backend) handleEnvelope(ctx context.Context, tx *store.Tx, env nodeclient.Envelope) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		b.log.Error("envelope handler panicked; envelope rejected", "seq", env.Seq, "sender", FormatKey(env.Sender),
			"panic", fmt.Sprint(p), "stack", panicstack.Where())
		err = fmt.Errorf("%w: the handler failed on it (panic: %v)", ErrRejectEnvelope, p)
	}()
	return b.cfg.Envelopes.HandleEnvelope(ctx, tx, env)
}

// ackInterval is the least time between two acks of one connection.
const ackInterval = 20 * time.Millisecond

// acker acknowledges, in the background, the newest committed sequence
// number to the node; several pending acks collapse into one.
type acker struct {
	mu     sync.Mutex
	seq    uint64
	wake   chan struct{}
	client *nodeclient.Client
	id     ed25519.PublicKey
	log    interface{ Warn(string, ...any) }
}

func (a *acker) set(seq uint64) {
	a.mu.Lock()
	if seq > a.seq {
		a.seq = seq
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *acker) run(ctx context.Context) {
	var acked uint64
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		// A busy stream would ack every envelope, a write at the node
		// each; acks instead go at most ackInterval apart and cover what
		// was committed meanwhile. An ack waits for nothing the daemon
		// needs: the cursor is durable here, and what the node pushes
		// again before the ack lands is skipped by it.
		if wait := ackInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		a.mu.Lock()
		seq := a.seq
		a.mu.Unlock()
		if seq <= acked {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := a.client.Ack(actx, a.id, seq)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("ack to node", "seq", seq, "err", err)
			}
			if errors.Is(err, nodeclient.ErrCursorAhead) {
				// The node's queue fell behind while connected (its
				// database was replaced under it): the next connection
				// finds out at its subscription and reads again.
				a.client.Close()
				return
			}
			continue // the next ack (or the next connection) covers it
		}
		acked = seq
	}
}

// receive subscribes to the user's queue from the stored cursor and applies
// what the node pushes until ctx ends. A failure to apply closes the
// connection, so that the loop reconnects and the node pushes again.
func (b *Backend) receive(ctx context.Context, c *nodeclient.Client, id ed25519.PublicKey) {
	var cursor uint64
	if err := b.view(ctx, func(tx *store.Tx) (err error) { cursor, err = tx.NodeCursor(); return }); err != nil {
		b.log.Error("read node cursor", "err", err)
		c.Close()
		return
	}
	a := &acker{wake: make(chan struct{}, 1), client: c, id: id, log: b.log}
	go a.run(ctx)
	deliver := func(dctx context.Context, batch []nodeclient.Envelope) error {
		for len(batch) > 0 {
			n := min(len(batch), maxApplyBatch)
			_, cursor, err := b.applyEnvelopes(dctx, batch[:n])
			if cursor > 0 {
				a.set(cursor)
			}
			if err != nil {
				b.log.Error("receive", "err", err)
				go c.Close()
				return err
			}
			batch = batch[n:]
		}
		return nil
	}
	sub, err := c.Subscribe(ctx, id, cursor, deliver)
	if errors.Is(err, nodeclient.ErrCursorAhead) {
		// The node's queue never reached this cursor: its database is
		// older than what was read here (restored from a backup, say).
		// Reading on from the cursor would skip what it numbers below
		// it now; read it all again instead.
		b.log.Warn("the node's queue is behind this daemon's cursor (its database is older than what was read); reading the queue again from its start",
			"cursor", cursor, "err", err)
		if err = b.update(ctx, func(tx *store.Tx) error { return tx.ResetNodeCursor() }); err == nil {
			b.reread.Store(max(b.reread.Load(), cursor))
			cursor = 0
			sub, err = c.Subscribe(ctx, id, cursor, deliver)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("subscribe to queue", "err", err)
			c.Close()
		}
		return
	}
	if cursor > 0 {
		// A crash between commit and ack leaves applied messages queued.
		a.set(cursor)
	}
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	sub.Cancel(cctx)
	cancel()
}

// sendPage is the number of pending items the sender reads at once.
const sendPage = 100

// permanentNodeErr reports whether the node will refuse this enqueue every
// time.
func permanentNodeErr(err error) bool {
	return errors.Is(err, nodeclient.ErrTooLarge) || errors.Is(err, nodeclient.ErrInvalidArgument)
}

// sendOutbox delivers pending application messages while connected. Each
// recipient gets the payload with the item's client message id, so a
// repeat after a crash or reconnect is stored once by the node. Commits
// stay for the group state machine, which must learn the node's verdict.
//
// Order: items of one group go out in the order they were queued, and so
// do the items of no group (control messages). An item the node refuses
// for now (rate limit, node busy or stopping) is retried, itself, after a
// backoff of its group's own; nothing queued after it in its group goes
// first, while the other groups' items keep going. A lost connection ends
// the pass; the next connection starts again from the oldest pending item.
// A group's consecutive pending items go to the node in one call
// (outbox_run.go), which refuses as one call per item would.
func (b *Backend) sendOutbox(ctx context.Context, c *nodeclient.Client) {
	waits := map[string]*outboxWait{} // by orderKey: groups waiting to retry
	marks := b.startMarks()           // outbox_marks.go
	defer marks.stop()
	// After a pass that left nothing pending behind it (clean), the next
	// items are those the commits since hand over (store.FreshOutbox),
	// unless one of those commits did more: then, as after any other pass,
	// the outbox is read. lastID is the newest item met, so that one both
	// read and handed over goes out once.
	var token uint64
	var lastID int64
	clean := false
	single := false // the node has no fanOutBatch: one fanOut per item
	for {
		// Only commits that may make an item pending wake the sender
		// (store.OutboxChanged), not its own sent marks or receipts.
		changed := b.st.OutboxChanged()
		now := time.Now()
		var skip [][]byte
		skipDirect := false
		next := time.Time{}
		for k, w := range waits {
			if !now.Before(w.until) {
				continue
			}
			if k == "" {
				skipDirect = true
			} else {
				skip = append(skip, []byte(k))
			}
			if next.IsZero() || w.until.Before(next) {
				next = w.until
			}
		}
		var items []store.OutboxItem
		handed := false
		if clean && len(waits) == 0 {
			items, handed = b.st.FreshOutbox(token)
		}
		recovering := false
		if !handed {
			marks.reading()
			token = b.st.BeginOutboxRead()
			b.outboxReads.Add(1)
			err := b.view(ctx, func(tx *store.Tx) (err error) {
				if items, err = tx.PendingSends(sendPage, skip, skipDirect); err != nil {
					return err
				}
				recovering, err = tx.HasOpenRecovery()
				return err
			})
			if err != nil {
				if ctx.Err() == nil {
					b.log.Error("read outbox", "err", err)
				}
				return
			}
		}
		// Clean unless an item stays behind (below), the page was full, or
		// a recovery holds items back that the handed-over list would not.
		clean = !recovering && len(items) < sendPage
		progress := false
		taken := 0 // items read that the node took, their marks not read yet
		for i := 0; i < len(items); i++ {
			it := items[i]
			if handed && it.ID <= lastID {
				continue // read and handed over: out already
			}
			lastID = max(lastID, it.ID)
			key := string(it.GroupID)
			if w := waits[key]; w != nil && now.Before(w.until) {
				clean = false
				continue // an earlier item of this group waits: keep the order
			}
			if marks.sent(it.ID) {
				taken++
				continue // taken by the node, its mark on the way
			}
			run := outboxRun(items[i:], handed, lastID, marks, single)
			seqs, err := b.deliverRun(ctx, c, run, &single)
			for k, seq := range seqs {
				marks.add(run[k], seq)
				lastID = max(lastID, run[k].ID)
				progress = true
				delete(waits, key)
			}
			i += len(seqs)
			if err == nil {
				i--
				continue
			}
			// The node refused run[len(seqs)]; the items after it in the
			// run were not tried and come next.
			it = items[i]
			lastID = max(lastID, it.ID)
			if len(it.GroupID) > 0 && errors.Is(err, nodeclient.ErrUnauthorized) {
				// The sender is no longer in the group's roster at the
				// node (removed meanwhile): the message can never go out.
				err = fmt.Errorf("%w: %w", nodeclient.ErrInvalidArgument, err)
			}
			clean = false
			switch {
			case ctx.Err() != nil:
				return
			case permanentNodeErr(err):
				b.log.Warn("outbox item refused by the node", "id", it.ID, "err", err)
				if err := b.update(ctx, func(tx *store.Tx) error { return tx.SetOutboxState(it.ID, store.OutboxDropped, err.Error()) }); err != nil {
					b.log.Error("outbox", "err", err)
					return
				}
				progress = true
			default:
				var ne *nodeclient.NodeError
				if !errors.As(err, &ne) {
					// The connection failed: the next one resumes.
					b.log.Warn("outbox delivery", "id", it.ID, "err", err)
					return
				}
				w := waits[key]
				if w == nil {
					w = &outboxWait{backoff: b.cfg.MinBackoff}
					waits[key] = w
				}
				retry := jitter(w.backoff)
				w.until = time.Now().Add(retry)
				w.backoff = min(2*w.backoff, b.cfg.MaxBackoff)
				b.log.Warn("outbox delivery refused for now", "id", it.ID, "err", err, "retry_in", retry)
				if err := b.update(ctx, func(tx *store.Tx) error { return tx.SetOutboxState(it.ID, store.OutboxPending, err.Error()) }); err != nil {
					b.log.Error("outbox", "err", err)
					return
				}
				if next.IsZero() || w.until.Before(next) {
					next = w.until
				}
			}
		}
		// After a short page nothing is left to read until a change: what
		// was queued since the read signals changed, an item that waits
		// for its group sets next, and one whose mark fails is signalled
		// by the marks' writer (marks.retry). A full page may hide more.
		if progress && len(items) >= sendPage {
			continue
		}
		if taken > 0 && len(items) >= sendPage {
			// A full page of items the node took, whose marks were not
			// yet committed when it was read, hides the items after it:
			// nothing would wake the sender for those. Read again once
			// the marks are in.
			if !marks.settle(ctx) {
				return
			}
			clean = false
			continue
		}
		woke, retried := b.waitOutbox(ctx, changed, marks.retry, next)
		if !woke {
			return
		}
		if retried || len(waits) > 0 {
			clean = false // a mark failed, or a group waits: read
		}
	}
}

// waitOutbox waits for a change, a failed mark, until next (when not zero), or for ctx;
// it reports false when ctx ended, and whether a mark failed or a retry is due.
func (b *Backend) waitOutbox(ctx context.Context, changed, retryMarks <-chan struct{}, next time.Time) (woke, retried bool) {
	var retry <-chan time.Time
	if !next.IsZero() {
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		retry = t.C
	}
	select {
	case <-changed:
	case <-retryMarks:
		return true, true
	case <-retry:
		return true, true
	case <-ctx.Done():
		return false, false
	}
	return true, false
}

// outboxWait is a group's pause after the node refused its oldest item
// for now.
type outboxWait struct {
	until   time.Time
	backoff time.Duration
}

// outboxClientID is the idempotency key an item is enqueued with.
func outboxClientID(it store.OutboxItem) []byte {
	if len(it.ClientMsgID) > 0 {
		return it.ClientMsgID
	}
	return fmt.Appendf(nil, "qpd-outbox-%d-%d", it.ID, it.CreatedAt.UnixNano())
}

// deliver gives item it to the node and returns the number the node gave
// its message in the group's order (0 for none); the caller marks it sent.
func (b *Backend) deliver(ctx context.Context, c *nodeclient.Client, it store.OutboxItem) (uint64, error) {
	cid := outboxClientID(it)
	if len(it.GroupID) > 0 {
		// A group message goes to every other member in one node
		// transaction, so that all members receive the group's messages in
		// one order; the node knows the members from the group's tree.
		// The node's answer numbers the message in the group's order, the
		// number every member sees.
		var groupSeq uint64
		if fannedOut(it) {
			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			seq, _, err := c.FanOut(fctx, cid, it.Payload)
			cancel()
			if err != nil {
				return 0, fmt.Errorf("fan out outbox item %d: %w", it.ID, err)
			}
			groupSeq = seq
		}
		return groupSeq, nil
	}
	for _, r := range it.Recipients {
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, _, err := c.Enqueue(ectx, r, it.Payload, cid)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("enqueue outbox item %d to %x: %w", it.ID, r, err)
		}
	}
	return 0, nil
}
