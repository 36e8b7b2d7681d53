package server

import "sync"

// notifier wakes the subscriptions of a recipient when a message for it is
// stored. A wake-up is a hint: the subscription reads the store to learn what
// is new, so coalescing several wake-ups into one loses nothing.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

func newNotifier() *notifier {
	return &notifier{waiters: make(map[string]map[chan struct{}]struct{})}
}

// watch registers for wake-ups about recipient. The channel has room for one
// pending wake-up. Call the returned function to stop.
func (n *notifier) watch(recipient []byte) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	key := string(recipient)
	n.mu.Lock()
	set := n.waiters[key]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		n.waiters[key] = set
	}
	set[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		if set := n.waiters[key]; set != nil {
			delete(set, ch)
			if len(set) == 0 {
				delete(n.waiters, key)
			}
		}
		n.mu.Unlock()
	}
}

// notify wakes every watcher of recipient without blocking.
func (n *notifier) notify(recipient []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.waiters[string(recipient)] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// wake is the callback of store.Notifier: it wakes the watchers of
// recipient, or every watcher when recipient is nil.
func (n *notifier) wake(recipient []byte) {
	if recipient != nil {
		n.notify(recipient)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, set := range n.waiters {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
