package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/client"
)

// TestPushStoreFailureEndsSubscription: when the store fails under a push,
// the node tells the subscriber (MessageSink.ended) instead of going quiet.
func TestPushStoreFailureEndsSubscription(t *testing.T) {
	n := startInternalNode(t, nil)
	srv, st, c, pub, ctx := n.srv, n.st, n.c, n.pub, n.ctx
	sub, err := c.Subscribe(ctx, pub, 0, func(context.Context, []client.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	srv.notifier.notify(pub) // as an enqueue would
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber not told that the push stopped")
	}
	if !errors.Is(sub.Err(), client.ErrInternal) {
		t.Fatalf("Err = %v, want ErrInternal", sub.Err())
	}
	// The connection itself is still up.
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
