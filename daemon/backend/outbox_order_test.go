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

// blockingFanOutStore refuses every FanOut of one group by one sender
// with ErrLimit (a full queue, which the daemon retries) while block is
// set, from the fanOuts-th message of that group on.
type blockingFanOutStore struct {
	nodestore.Store
	mu      sync.Mutex
	group   []byte
	sender  []byte
	after   int // messages of group let through before the block
	passed  int
	block   bool
	refused int
	batches []int // the items of each FanOutBatch
}

func (s *blockingFanOutStore) FanOut(ctx context.Context, groupID, sender, clientMsgID, payload []byte, update nodestore.ViewUpdate) (nodestore.FanOutResult, error) {
	s.mu.Lock()
	if s.group != nil && bytes.Equal(groupID, s.group) && bytes.Equal(sender, s.sender) {
		if s.block && s.passed >= s.after {
			s.refused++
			s.mu.Unlock()
			return nodestore.FanOutResult{}, fmt.Errorf("test: %w", nodestore.ErrLimit)
		}
		s.passed++
	}
	s.mu.Unlock()
	return s.Store.FanOut(ctx, groupID, sender, clientMsgID, payload, update)
}

// FanOutBatch lets a batch's messages through up to the block and
// refuses the first one past it, as the node refuses a message of a batch.
func (s *blockingFanOutStore) FanOutBatch(ctx context.Context, sender []byte, items []nodestore.FanOutItem) ([]nodestore.FanOutResult, error) {
	s.mu.Lock()
	s.batches = append(s.batches, len(items))
	n, refuse := len(items), false
	for k, it := range items {
		if s.group == nil || !bytes.Equal(it.GroupID, s.group) || !bytes.Equal(sender, s.sender) {
			continue
		}
		if s.block && s.passed >= s.after {
			n, refuse = k, true
			s.refused++
			break
		}
		s.passed++
	}
	s.mu.Unlock()
	res, err := s.Store.FanOutBatch(ctx, sender, items[:n])
	if err != nil || !refuse {
		return res, err
	}
	return res, fmt.Errorf("test: %w", nodestore.ErrLimit)
}

// A message the node refuses for now is retried itself: nothing queued
// after it in its group goes first, and the other groups' messages go out
// meanwhile.
func TestOutboxKeepsGroupOrderAndOtherGroupsGo(t *testing.T) {
	bs := &blockingFanOutStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		bs.Store = st
		return bs
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	ga, a := groupsForm(t, "a", alice, bob)
	_, b := groupsForm(t, "b", alice, bob)
	bs.mu.Lock()
	bs.group, bs.sender, bs.after, bs.block = ga.ID, alice.id, 2, true
	bs.mu.Unlock()

	var want []string
	for i := range 10 {
		text := fmt.Sprintf("a%02d", i)
		want = append(want, text)
		if _, err := alice.b.Send(ctx, a, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "the node refuses a's third message", func() bool {
		bs.mu.Lock()
		defer bs.mu.Unlock()
		return bs.refused >= 2
	})
	if _, err := alice.b.Send(ctx, b, "b while a waits", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "b's message arrives while a's are refused", func() bool {
		return slices.Equal(groupsTexts(t, bob, b), []string{"b while a waits"})
	})
	if got := groupsTexts(t, bob, a); !slices.Equal(got, want[:2]) {
		t.Fatalf("while blocked bob has %q of a, want %q", got, want[:2])
	}
	bs.mu.Lock()
	bs.block = false
	bs.mu.Unlock()
	groupsWait(t, "all of a arrives", func() bool { return len(groupsTexts(t, bob, a)) >= len(want) })
	if got := groupsTexts(t, bob, a); !slices.Equal(got, want) {
		t.Fatalf("bob reads a as %q, want %q", got, want)
	}
}
