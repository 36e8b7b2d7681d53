package backend

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// gatedFanOutStore holds the first single fan-out of one group by one
// sender until open is closed, so that the messages sent meanwhile wait
// together in the outbox, and counts the group's single fan-outs.
type gatedFanOutStore struct {
	nodestore.Store
	mu      sync.Mutex
	group   []byte
	sender  []byte
	open    chan struct{}
	held    bool
	singles int
}

func (s *gatedFanOutStore) FanOut(ctx context.Context, groupID, sender, clientMsgID, payload []byte, update nodestore.ViewUpdate) (nodestore.FanOutResult, error) {
	s.mu.Lock()
	ours := s.group != nil && bytes.Equal(groupID, s.group) && bytes.Equal(sender, s.sender)
	hold := ours && !s.held
	if ours {
		s.singles++
		s.held = true
	}
	open := s.open
	s.mu.Unlock()
	if hold {
		select {
		case <-open:
		case <-ctx.Done():
			return nodestore.FanOutResult{}, ctx.Err()
		}
	}
	return s.Store.FanOut(ctx, groupID, sender, clientMsgID, payload, update)
}

// A node without fanOutBatch (older than the method) gets a group's
// pending messages one call each: all arrive, in order, once each.
func TestFallbackFanOutToNodeWithoutBatch(t *testing.T) {
	gs := &gatedFanOutStore{open: make(chan struct{})}
	node := testnode.StartNodeWithoutFanOutBatch(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		gs.Store = st
		return gs
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	ga, a := groupsForm(t, "a", alice, bob)
	gs.mu.Lock()
	gs.group, gs.sender = ga.ID, alice.id
	gs.mu.Unlock()
	var want []string
	for i := range 10 {
		text := fmt.Sprintf("a%02d", i)
		want = append(want, text)
		if _, err := alice.b.Send(ctx, a, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "the node holds a's first message", func() bool {
		gs.mu.Lock()
		defer gs.mu.Unlock()
		return gs.held
	})
	close(gs.open)
	groupsWait(t, "all of a arrives", func() bool { return len(groupsTexts(t, bob, a)) >= len(want) })
	if got := groupsTexts(t, bob, a); !slices.Equal(got, want) {
		t.Fatalf("bob reads a as %q, want %q", got, want)
	}
	gs.mu.Lock()
	singles := gs.singles
	gs.mu.Unlock()
	if singles < len(want) {
		t.Fatalf("the node saw %d single fan-outs of a, want at least %d", singles, len(want))
	}
}
