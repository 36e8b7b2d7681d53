package server_test

import (
	"context"
	"testing"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// A client whose cursor is past the last number its queue handed out saw
// a later queue than the node's database holds (one restored from a
// backup). Subscribing or receiving from that cursor would skip what is
// now numbered below it, and acknowledging up to it would delete that
// unread: the node refuses each with ErrCursorAhead and deletes nothing,
// and reading from a cursor within the queue goes on as before.
func TestCursorAheadOfTheQueue(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	for _, p := range []string{"one", "two"} {
		if _, _, err := ca.Enqueue(ctx, b.pub, []byte(p), nil); err != nil {
			t.Fatal(err)
		}
	}
	nop := func(context.Context, []client.Envelope) error { return nil }
	_, err := cb.Subscribe(ctx, b.pub, 3, nop)
	wantErr(t, "subscribe after 3 of 2", err, client.ErrCursorAhead)
	_, err = cb.Receive(ctx, b.pub, 5, 0)
	wantErr(t, "receive after 5 of 2", err, client.ErrCursorAhead)
	_, err = cb.Ack(ctx, b.pub, 3)
	wantErr(t, "ack up to 3 of 2", err, client.ErrCursorAhead)
	msgs, err := cb.Receive(ctx, b.pub, 0, 0)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("receive after the refusals: %d messages, %v; want both kept", len(msgs), err)
	}
	// At the queue's end, and for a queue that never had a message, a
	// cursor of 0 or the last number is fine.
	if msgs, err := cb.Receive(ctx, b.pub, 2, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("receive after the last: %d, %v", len(msgs), err)
	}
	sub, err := cb.Subscribe(ctx, b.pub, 2, nop)
	if err != nil {
		t.Fatalf("subscribe after the last: %v", err)
	}
	sub.Cancel(ctx)
	if n, err := cb.Ack(ctx, b.pub, 2); err != nil || n != 2 {
		t.Fatalf("ack up to the last: %d, %v", n, err)
	}
	if _, err := ca.Receive(ctx, a.pub, 0, 0); err != nil {
		t.Fatalf("receive of an empty queue from 0: %v", err)
	}
	_, err = ca.Subscribe(ctx, a.pub, 1, nop)
	wantErr(t, "subscribe after 1 to a queue that never had a message", err, client.ErrCursorAhead)
	// Another's queue: refused as not the caller's before any cursor is
	// looked at, so the refusal tells nothing of how far that queue got.
	_, err = ca.Subscribe(ctx, b.pub, 100, nop)
	wantErr(t, "subscribe to another's queue after 100", err, client.ErrUnauthorized)
	_, err = ca.Receive(ctx, b.pub, 100, 0)
	wantErr(t, "receive another's queue after 100", err, client.ErrUnauthorized)
	_, err = ca.Ack(ctx, b.pub, 100)
	wantErr(t, "ack another's queue up to 100", err, client.ErrUnauthorized)
}
