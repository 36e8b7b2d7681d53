package backend

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// A group's messages pending together go to the node in one batch, in
// order; when the node refuses one of a batch, those before it stay
// delivered and it and the rest follow, in order, once the node takes
// them.
func TestOutboxBatchesAGroupsPendingMessages(t *testing.T) {
	bs := &blockingFanOutStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		bs.Store = st
		return bs
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	ga, a := groupsForm(t, "a", alice, bob)
	bs.mu.Lock()
	bs.group, bs.sender, bs.after, bs.block = ga.ID, alice.id, 0, true
	bs.mu.Unlock()
	var want []string
	for i := range 12 {
		text := fmt.Sprintf("a%02d", i)
		want = append(want, text)
		if _, err := alice.b.Send(ctx, a, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "the node refuses a's first message", func() bool {
		bs.mu.Lock()
		defer bs.mu.Unlock()
		return bs.refused >= 1
	})
	// Let five through: the batch after the wait holds all twelve, the
	// node refuses the sixth.
	bs.mu.Lock()
	bs.after, bs.batches = 5, nil
	bs.mu.Unlock()
	groupsWait(t, "five of a arrive", func() bool { return len(groupsTexts(t, bob, a)) >= 5 })
	bs.mu.Lock()
	batches := slices.Clone(bs.batches)
	bs.block = false
	bs.mu.Unlock()
	if len(batches) == 0 || slices.Max(batches) < 6 {
		t.Fatalf("the node saw batches of %v items, want one of the pending twelve", batches)
	}
	groupsWait(t, "all of a arrives", func() bool { return len(groupsTexts(t, bob, a)) >= len(want) })
	if got := groupsTexts(t, bob, a); !slices.Equal(got, want) {
		t.Fatalf("bob reads a as %q, want %q", got, want)
	}
}
