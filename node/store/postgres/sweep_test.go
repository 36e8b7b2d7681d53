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
// wake-up or reconnect. The sweep names the recipients of recent messages
// only: it wakes neither every subscription (fn(nil)) nor a recipient
// whose messages are older than its look-back, which earlier sweeps named.
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
	carol := storetest.Key("carol")
	if _, err := writer.pool.Exec(ctx, `INSERT INTO queues (recipient, last_seq, depth) VALUES ($1, 1, 1)`, carol); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.pool.Exec(ctx, `INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, enqueued_at)
		VALUES ($1, 1, $2, '\x02', 'old', now() - interval '1 hour')`, carol, storetest.Key("alice")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n.waitFor(t, "the sweep naming bob", func(n *notes) bool { return n.has(bob) })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the sweep came after %v", d)
	}
	// A few more sweeps.
	time.Sleep(5 * listener.sweepEvery)
	n.mu.Lock()
	all, named := n.all, n.has(carol)
	n.mu.Unlock()
	if all != 1 || named {
		t.Fatalf("after the sweeps: %d calls of fn(nil) (want only the first), carol named %v (want not)", all, named)
	}
	got, err := listener.Receive(ctx, bob, 0, 10)
	if err != nil || len(got) != 1 || string(got[0].Payload) != "unannounced" {
		t.Fatalf("Receive = %+v, %v", got, err)
	}
}
