package store

import "sync"

// The outbox sender waits for work. Rather than wake at every commit (a
// received receipt, its own "sent" marks), it waits on OutboxChanged,
// closed after each commit that may have made an application item
// pending: one that added an item, moved one to a state other than sent,
// retargeted one, or started or advanced a group's recovery (whose items
// wait meanwhile). What a rolled-back savepoint did may signal too: a
// wake-up too many costs one read, one too few would strand an item.

// signal is a channel closed and replaced at each notification.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns the channel the next notification closes.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// notify closes the waiting channel.
func (s *signal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// OutboxChanged returns a channel closed when a commit after this call
// may have made an application item pending.
func (s *Store) OutboxChanged() <-chan struct{} { return s.outboxSig.wait() }

// outboxChanged notes that tx may make an application item pending, other
// than by adding one (outbox_fresh.go).
func (tx *Tx) outboxChanged() { tx.outboxTouched, tx.outboxOther = true, true }
