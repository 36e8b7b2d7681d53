package backend

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// TestOutboxSenderReadsPerMessage: the outbox sender reads the pending
// items when an item may have become pending other than by a send, not
// again after every delivery, nor at its own sent marks or at the
// delivery receipts that come back. The messages Alice sends, one at a
// time, are handed over by their commits (store.FreshOutbox): no read.
func TestOutboxSenderReadsPerMessage(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "reads", alice, bob)
	ctx := context.Background()
	pending := func() uint64 {
		var n uint64
		if err := alice.b.view(ctx, func(tx *store.Tx) (err error) { n, err = tx.CountPendingOutbox(); return }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	quiet := func() int64 {
		last := alice.b.outboxReads.Load()
		for {
			time.Sleep(300 * time.Millisecond)
			n := alice.b.outboxReads.Load()
			if n == last {
				return n
			}
			last = n
		}
	}
	groupsWait(t, "the group's control messages out", func() bool { return pending() == 0 })
	before := quiet()
	const n = 20
	for i := range n {
		if _, err := alice.b.Send(ctx, gid, fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
		groupsWait(t, "delivery", func() bool { return pending() == 0 && len(groupsTexts(t, bob, gid)) == i+1 })
	}
	reads := quiet() - before
	t.Logf("%d outbox reads for %d messages", reads, n)
	if reads > 3 {
		t.Fatalf("%d outbox reads for %d messages, want at most 3", reads, n)
	}
}
