package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// countingReceiveStore counts the queue reads of one recipient.
type countingReceiveStore struct {
	store.Store
	recipient []byte
	reads     atomic.Int64
}

func (s *countingReceiveStore) Receive(ctx context.Context, recipient []byte, after uint64, limit int) ([]store.Message, error) {
	if string(recipient) == string(s.recipient) {
		s.reads.Add(1)
	}
	return s.Store.Receive(ctx, recipient, after, limit)
}

// A push reads the queue once per message that wakes it: after a read
// that reached the queue's end it waits for the next wake-up instead of
// reading the empty queue again. The messages still all arrive, in order,
// and a page boundary (more than one read's worth queued) is read on
// through without a wake-up.
func TestPushReadsOncePerWake(t *testing.T) {
	a, b := newTestIdentity(t), newTestIdentity(t)
	cs := &countingReceiveStore{recipient: b.pub}
	n := startWrappedNode(t, server.Config{ReceiveBatch: 4}, store.Limits{}, func(st store.Store) store.Store {
		cs.Store = st
		return cs
	})
	ctx := testCtx(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	// Ten queued before the subscription: three pushes of at most four,
	// read on without waiting for a wake-up.
	for i := range 10 {
		if _, _, err := ca.Enqueue(ctx, b.pub, fmt.Appendf(nil, "q%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan client.Envelope, 100)
	if _, err := cb.Subscribe(ctx, b.pub, 0, func(ctx context.Context, batch []client.Envelope) error {
		for _, e := range batch {
			got <- e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	next := func(want string) {
		t.Helper()
		select {
		case e := <-got:
			if string(e.Payload) != want {
				t.Fatalf("pushed %q, want %q", e.Payload, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q not pushed", want)
		}
	}
	for i := range 10 {
		next(fmt.Sprintf("q%d", i))
	}
	const live = 20
	before := cs.reads.Load()
	for i := range live {
		if _, _, err := ca.Enqueue(ctx, b.pub, fmt.Appendf(nil, "m%d", i), nil); err != nil {
			t.Fatal(err)
		}
		next(fmt.Sprintf("m%d", i))
	}
	time.Sleep(100 * time.Millisecond)
	if reads := cs.reads.Load() - before; reads > live+2 {
		t.Fatalf("%d queue reads for %d messages pushed one at a time, want about one each", reads, live)
	}
}
