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

// refusingFanOutStore refuses the refuse-th message of one group by one
// sender for good (an invalid argument, which the daemon drops), once.
type refusingFanOutStore struct {
	nodestore.Store
	mu     sync.Mutex
	group  []byte
	sender []byte
	refuse int // 1-based; 0: none
	seen   int
}

func (s *refusingFanOutStore) FanOutBatch(ctx context.Context, sender []byte, items []nodestore.FanOutItem) ([]nodestore.FanOutResult, error) {
	s.mu.Lock()
	n := len(items)
	for k, it := range items {
		if s.refuse == 0 || !bytes.Equal(it.GroupID, s.group) || !bytes.Equal(sender, s.sender) {
			continue
		}
		if s.seen++; s.seen == s.refuse {
			n = k
			s.refuse = 0
			break
		}
	}
	s.mu.Unlock()
	res, err := s.Store.FanOutBatch(ctx, sender, items[:n])
	if err != nil || n == len(items) {
		return res, err
	}
	return res, fmt.Errorf("test: %w", nodestore.ErrInvalid)
}

// A message of a batch the node refuses for good is dropped, as a refused
// single message is; the messages after it in the batch go out next, in
// order.
func TestOutboxBatchDropsARefusedMessageAndGoesOn(t *testing.T) {
	bs := &blockingFanOutStore{}
	rs := &refusingFanOutStore{Store: bs}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		bs.Store = st
		return rs
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	ga, a := groupsForm(t, "a", alice, bob)
	bs.mu.Lock()
	bs.group, bs.sender, bs.after, bs.block = ga.ID, alice.id, 0, true
	bs.mu.Unlock()
	var want []string
	for i := range 8 {
		text := fmt.Sprintf("a%02d", i)
		if i != 2 {
			want = append(want, text)
		}
		if _, err := alice.b.Send(ctx, a, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "the node refuses a's first message", func() bool {
		bs.mu.Lock()
		defer bs.mu.Unlock()
		return bs.refused >= 1
	})
	rs.mu.Lock()
	rs.group, rs.sender, rs.refuse = ga.ID, alice.id, 3
	rs.mu.Unlock()
	bs.mu.Lock()
	bs.block = false
	bs.mu.Unlock()
	groupsWait(t, "the rest of a arrives", func() bool { return len(groupsTexts(t, bob, a)) >= len(want) })
	if got := groupsTexts(t, bob, a); !slices.Equal(got, want) {
		t.Fatalf("bob reads a as %q, want %q", got, want)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.refuse != 0 {
		t.Fatal("the node never refused a's third message")
	}
}
