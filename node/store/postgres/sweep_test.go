package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// TestSweepWakesUnannounced: a message committed by a node that died
// before announcing it (here: rows written without pg_notify) reaches a
// listener on another node by the next sweep, not only at its next
// wake-up or reconnect.
func TestSweepWakesUnannounced(t *testing.T) {
	ctx := testCtx(t)
	conn := pgtest.NewDatabase(t)
	writer := openTestStore(t, conn, storetest.Limits())
	listener := openTestStore(t, conn, storetest.Limits())
	listener.sweepEvery = 200 * time.Millisecond

	n := newNotes()
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	go listener.Notifications(lctx, n.fn)
	n.waitFor(t, "the first fn(nil)", func(n *notes) bool { return n.all == 1 })

	bob := storetest.Key("bob")
	if _, err := writer.pool.Exec(ctx, `INSERT INTO queues (recipient, last_seq, depth) VALUES ($1, 1, 1)`, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.pool.Exec(ctx, `INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, enqueued_at)
		VALUES ($1, 1, $2, '\x01', 'unannounced', now())`, bob, storetest.Key("alice")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n.waitFor(t, "a sweep's fn(nil)", func(n *notes) bool { return n.all >= 2 })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the sweep came after %v", d)
	}
	got, err := listener.Receive(ctx, bob, 0, 10)
	if err != nil || len(got) != 1 || string(got[0].Payload) != "unannounced" {
		t.Fatalf("Receive = %+v, %v", got, err)
	}
}
