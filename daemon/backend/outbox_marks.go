package backend

import (
	"context"
	"errors"
	"sync"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// The outbox sender does not wait for its own "sent" marks. Once the node
// took an item, the mark is handed to a writer of its own, which commits
// whatever marks have queued up in one transaction (store.UpdateNoSync,
// see markSent) while the sender goes on to the next item; until its mark
// is committed, the sender treats the item as sent. So the node's
// fan-outs follow one another without a local transaction in between,
// and the marks of a busy stream cost one commit per batch, not one per
// message. A mark lost to a crash, or one that fails, leaves its item
// pending: it goes out again, and the node, which deduplicates by the
// item's client message id, stores it once and answers the same number.

// outboxMarks is one sender's queue of marks and its writer.
type outboxMarks struct {
	b        *Backend
	mu       sync.Mutex
	queued   []sentMark
	inFlight map[int64]bool // taken by the node, mark not committed yet
	// committed are marks committed since the sender's last read began:
	// that read may predate them, so their items still count as sent.
	committed map[int64]bool
	// idle is closed while no mark is in flight (see settle).
	idle     chan struct{}
	wake     chan struct{}
	retry    chan struct{} // a mark failed: its item is pending again
	stopping chan struct{}
	stopped  chan struct{}
}

// sentMark is what markSent records for an item.
type sentMark struct {
	it       store.OutboxItem
	groupSeq uint64
}

// startMarks starts a writer of marks; stop it with stop.
func (b *Backend) startMarks() *outboxMarks {
	m := &outboxMarks{b: b, inFlight: map[int64]bool{}, committed: map[int64]bool{}, idle: make(chan struct{}), wake: make(chan struct{}, 1), retry: make(chan struct{}, 1),
		stopping: make(chan struct{}), stopped: make(chan struct{})}
	close(m.idle)
	go m.run()
	return m
}

// add queues the mark of an item the node took.
func (m *outboxMarks) add(it store.OutboxItem, groupSeq uint64) {
	m.mu.Lock()
	m.queued = append(m.queued, sentMark{it, groupSeq})
	if len(m.inFlight) == 0 {
		m.idle = make(chan struct{})
	}
	m.inFlight[it.ID] = true
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// sent reports whether item id was taken by the node and waits for its
// mark.
func (m *outboxMarks) sent(id int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inFlight[id] || m.committed[id]
}

// settle waits until no mark is in flight: every item the node took so
// far is marked sent, or pending again after a failed mark. It reports
// false when ctx ended first.
func (m *outboxMarks) settle(ctx context.Context) bool {
	m.mu.Lock()
	idle := m.idle
	m.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// reading is called as the sender begins a read of pending items: the
// marks committed so far are in what it reads.
func (m *outboxMarks) reading() {
	m.mu.Lock()
	clear(m.committed)
	m.mu.Unlock()
}

// stop commits the marks queued and ends the writer.
func (m *outboxMarks) stop() {
	close(m.stopping)
	<-m.stopped
}

func (m *outboxMarks) run() {
	defer close(m.stopped)
	for {
		select {
		case <-m.wake:
		case <-m.stopping:
			m.flush()
			return
		}
		m.flush()
	}
}

// flush commits the queued marks in one transaction.
func (m *outboxMarks) flush() {
	m.mu.Lock()
	batch := m.queued
	m.queued = nil
	m.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	// The marks are written even while the connection closes: the node
	// has the items.
	err := m.b.markSent(context.Background(), batch)
	if err != nil {
		m.b.log.Error("outbox: mark sent", "items", len(batch), "err", err)
	}
	m.mu.Lock()
	for _, s := range batch {
		delete(m.inFlight, s.it.ID)
		if err == nil {
			m.committed[s.it.ID] = true
		}
	}
	if len(m.inFlight) == 0 {
		select {
		case <-m.idle:
		default:
			close(m.idle)
		}
	}
	m.mu.Unlock()
	if err != nil {
		// Items left pending go out again: the sender must read them.
		select {
		case m.retry <- struct{}{}:
		default:
		}
	}
}

// markSent records that the node took the items of marks, and the number
// the node gave each message in the group's order (groupSeq, when not 0).
// The marks do not wait for the disk (store.UpdateNoSync): lost in a power
// cut, an item goes out again, and the node, which deduplicates on the
// item's client message id, stores it once and answers the same number.
// A mark that fails is skipped (its item goes out again) and the first
// such failure returned. The marks run without savepoints first; if one
// fails, the transaction rolls back and they run again, each in its own.
func (b *Backend) markSent(ctx context.Context, marks []sentMark) error {
	mark := func(tx *store.Tx, s sentMark) error {
		it := s.it
		if s.groupSeq > 0 && it.MessageSeq > 0 {
			if err := tx.SetGroupSeq(it.GroupID, it.MessageSeq, s.groupSeq); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err // (a message gone by retention keeps no number)
			}
		}
		return tx.SetOutboxState(it.ID, store.OutboxSent, "")
	}
	var failed error
	err := b.st.UpdateNoSync(ctx, func(tx *store.Tx) error {
		for _, s := range marks {
			if err := mark(tx, s); err != nil {
				failed = err
				return err
			}
		}
		return nil
	})
	if err == nil {
		b.changed.broadcast()
		return nil
	}
	if len(marks) == 1 || !errors.Is(err, failed) {
		return err // (a lone mark's failure is the transaction's)
	}
	err = b.st.UpdateNoSync(ctx, func(tx *store.Tx) error {
		failed = nil
		for _, s := range marks {
			err := tx.Savepoint(func(tx *store.Tx) error { return mark(tx, s) })
			if err != nil && failed == nil {
				failed = err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.changed.broadcast()
	return failed
}
