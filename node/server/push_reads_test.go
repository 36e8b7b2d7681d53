package server_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// receiveCountStore counts the store's Receive calls for one recipient.
type receiveCountStore struct {
	store.Store
	recipient []byte
	reads     atomic.Int64
}

func (s *receiveCountStore) Receive(ctx context.Context, recipient []byte, after uint64, limit int) ([]store.Message, error) {
	if bytes.Equal(recipient, s.recipient) {
		s.reads.Add(1)
	}
	return s.Store.Receive(ctx, recipient, after, limit)
}

// TestPushReadsOncePerMessage: messages stored one at a time, each pushed
// and answered before the next, cost the push one read of the queue each
// (it read the queue again after every delivery, to find it empty).
func TestPushReadsOncePerMessage(t *testing.T) {
	b := newTestIdentity(t)
	cs := &receiveCountStore{recipient: b.pub}
	n := startWrappedNode(t, server.Config{}, store.Limits{}, func(st store.Store) store.Store {
		cs.Store = st
		return cs
	})
	ctx := testCtx(t)
	a := newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	got := make(chan []client.Envelope, 1)
	if _, err := cb.Subscribe(ctx, b.pub, 0, func(_ context.Context, batch []client.Envelope) error {
		got <- batch
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const msgs = 20
	// Let the subscription's first read (of an empty queue) happen.
	time.Sleep(50 * time.Millisecond)
	before := cs.reads.Load()
	for i := range msgs {
		if _, _, err := ca.Enqueue(ctx, b.pub, []byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case batch := <-got:
			if len(batch) != 1 || batch[0].Payload[0] != byte(i) {
				t.Fatalf("push %d: %+v", i, batch)
			}
		case <-ctx.Done():
			t.Fatalf("message %d was not pushed", i)
		}
	}
	// A read that overlapped a later commit may be repeated once.
	time.Sleep(50 * time.Millisecond)
	if reads := cs.reads.Load() - before; reads > msgs+1 {
		t.Fatalf("%d messages cost %d reads of the queue; want at most %d", msgs, reads, msgs+1)
	}
}
