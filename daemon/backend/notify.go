package backend

import (
	"sync"
	"sync/atomic"
)

// notifier is a broadcast condition: wait returns a channel that the next
// broadcast closes.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
	n  atomic.Int64 // broadcasts so far
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.n.Add(1)
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}
