package backend

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// A node without fanOutBatch (older than the method) gets a group's
// pending messages one call each: all arrive, in order, once each. The
// node refuses the group's first message for now, so that the messages
// sent meanwhile wait together in the outbox and would go as one batch.
func TestFallbackFanOutToNodeWithoutBatch(t *testing.T) {
	bs := &blockingFanOutStore{}
	node := testnode.StartNodeWithoutFanOutBatch(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
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
	for i := range 10 {
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
	bs.mu.Lock()
	bs.block = false
	bs.mu.Unlock()
	groupsWait(t, "all of a arrives", func() bool { return len(groupsTexts(t, bob, a)) >= len(want) })
	if got := groupsTexts(t, bob, a); !slices.Equal(got, want) {
		t.Fatalf("bob reads a as %q, want %q", got, want)
	}
	bs.mu.Lock()
	singles, batches := bs.passed, len(bs.batches)
	bs.mu.Unlock()
	if singles != len(want) || batches != 0 {
		t.Fatalf("the node stored a in %d single fan-outs and %d batches, want %d and 0", singles, batches, len(want))
	}
}
