package store

import "sync"

// The outbox sender learns of new items from the commits that add them,
// without reading the outbox again. A send's transaction adds one
// application item and nothing else that concerns the sender; after the
// sender's read found nothing left behind, the items such commits add are
// exactly what is pending, in order (items are numbered in commit order,
// by the one writer). So each commit that may make an item pending
// (outbox_signal.go) either hands its added application items to a list
// (FreshOutbox), or, when it did anything else that concerns the sender
// (moved an item back to pending or refused it, retargeted one, started or
// advanced a recovery, added a commit), marks the list incomplete, and
// the sender reads the outbox as before. The list keeps what committed
// since the sender's last read (BeginOutboxRead), up to freshMaxItems and
// freshMaxBytes of payload; past that it is incomplete too.

// Bounds of the fresh list.
const (
	freshMaxItems = 256
	freshMaxBytes = 1 << 20
)

// freshOutbox is the list of items added since the sender's last read.
type freshOutbox struct {
	mu       sync.Mutex
	token    uint64 // the current read's; 0: no read began
	complete bool
	items    []OutboxItem
	bytes    int
}

// BeginOutboxRead starts a new fresh list, to be taken with the token it
// returns; call it before the read of the pending items, so that no commit
// after the read's snapshot is missed (one before it may be listed too:
// skip the items the read returned, by id).
func (s *Store) BeginOutboxRead() uint64 {
	f := &s.fresh
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token++
	f.complete, f.items, f.bytes = true, nil, 0
	return f.token
}

// FreshOutbox returns the application items added since the read of token
// began or since the last FreshOutbox, and starts a new list. ok is false
// when the list is incomplete (or token is not the current read's): the
// outbox must be read, after BeginOutboxRead.
func (s *Store) FreshOutbox(token uint64) (items []OutboxItem, ok bool) {
	f := &s.fresh
	f.mu.Lock()
	defer f.mu.Unlock()
	if token != f.token || !f.complete {
		return nil, false
	}
	items = f.items
	f.items, f.bytes = nil, 0
	return items, true
}

// outboxAdded notes an application item tx added.
func (tx *Tx) outboxAdded(it OutboxItem) {
	tx.outboxTouched = true
	tx.freshAdded = append(tx.freshAdded, it)
}

// commitFresh hands what committed tx added to the fresh list. The caller
// holds nothing; tx touched the outbox.
func (s *Store) commitFresh(tx *Tx) {
	f := &s.fresh
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.complete {
		return
	}
	if tx.outboxOther {
		f.complete, f.items, f.bytes = false, nil, 0
		return
	}
	for _, it := range tx.freshAdded {
		f.bytes += len(it.Payload)
		f.items = append(f.items, it)
	}
	if len(f.items) > freshMaxItems || f.bytes > freshMaxBytes {
		f.complete, f.items, f.bytes = false, nil, 0
	}
}
