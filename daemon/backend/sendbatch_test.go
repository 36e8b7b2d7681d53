package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// Concurrent sends share transactions: every send that succeeds is
// answered with its own history entry and outbox item, a failing one
// (a reply to a message that does not exist) fails alone, a repeated
// client message id is answered as the first, and every message arrives
// at the other member exactly once.
func TestConcurrentSendsShareTransactions(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "batch", alice, bob)
	ctx := context.Background()
	const senders, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	outbox := map[int64]string{}
	errs := make(chan error, senders*each*3)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				text := fmt.Sprintf("s%d-%d", s, i)
				cid := []byte(text)
				r, err := alice.b.Send(ctx, gid, text, cid)
				if err != nil {
					errs <- err
					continue
				}
				again, err := alice.b.Send(ctx, gid, text, cid)
				if err != nil || again.OutboxID != r.OutboxID || again.Message.Seq != r.Message.Seq {
					errs <- fmt.Errorf("repeat of %s: %+v, %v (first %d)", text, again, err, r.OutboxID)
				}
				if _, err := alice.b.Reply(ctx, gid, "#99999", "to nothing", nil); err == nil || errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("reply to a missing message: %v", err)
				}
				mu.Lock()
				if prev, dup := outbox[r.OutboxID]; dup {
					errs <- fmt.Errorf("outbox item %d for %s and %s", r.OutboxID, prev, text)
				}
				outbox[r.OutboxID] = text
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	groupsWait(t, "every message at bob", func() bool { return len(groupsTexts(t, bob, gid)) >= senders*each })
	got := groupsTexts(t, bob, gid)
	if len(got) != senders*each {
		t.Fatalf("bob has %d messages, want %d", len(got), senders*each)
	}
	// Each sender's messages arrive in the order it sent them.
	for s := range senders {
		var mine []string
		for _, m := range got {
			var ss, i int
			if _, err := fmt.Sscanf(m, "s%d-%d", &ss, &i); err == nil && ss == s {
				mine = append(mine, m)
			}
		}
		if !slices.IsSortedFunc(mine, func(a, b string) int {
			var x, y, ia, ib int
			fmt.Sscanf(a, "s%d-%d", &x, &ia)
			fmt.Sscanf(b, "s%d-%d", &y, &ib)
			return ia - ib
		}) || len(mine) != each {
			t.Fatalf("sender %d: %q", s, mine)
		}
	}
}

// A send that panics (a bug some input reaches) fails alone, its writes
// rolled back; the sends beside it and after it go through.
func TestPanickingSendFailsAlone(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "panic", alice, bob)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := alice.b.sendContent(ctx, gid, nil, func(*store.Tx, store.Group) (*content.Message, error) { panic("boom") })
			if !errors.Is(err, errSendPanicked) {
				errs <- fmt.Errorf("panicking send: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := alice.b.Send(ctx, gid, fmt.Sprintf("m%d", i), nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := alice.b.Send(ctx, gid, "after", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "every message at bob", func() bool { return len(groupsTexts(t, bob, gid)) >= 9 })
	if got := groupsTexts(t, bob, gid); len(got) != 9 {
		t.Fatalf("bob has %q", got)
	}
}

// A batch whose sends all succeed commits as it ran, without savepoints;
// one with a failing send runs again with them: the failure is the send's
// own, and the sends beside it commit once each.
func TestFailedSendInABatch(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "batch", alice, bob)
	ctx := context.Background()
	for round, failing := range []bool{false, true} {
		alice.b.gmu.Lock() // the sends queue up behind it, into one batch
		var wg sync.WaitGroup
		queued := func(n int) func() bool {
			return func() bool {
				alice.b.sends.mu.Lock()
				defer alice.b.sends.mu.Unlock()
				return alice.b.sends.running && len(alice.b.sends.waiting) == n
			}
		}
		// A first send is taken alone and waits for gmu.
		wg.Go(func() {
			if _, err := alice.b.Send(ctx, gid, fmt.Sprintf("r%d-first", round), nil); err != nil {
				t.Error(err)
			}
		})
		groupsWait(t, "the first send taken", queued(0))
		results := make([]error, 5)
		for i := range results {
			wg.Go(func() {
				if failing && i == 2 {
					_, results[i] = alice.b.Reply(ctx, gid, "#99999", "to nothing", nil)
					return
				}
				_, results[i] = alice.b.Send(ctx, gid, fmt.Sprintf("r%d-%d", round, i), nil)
			})
		}
		groupsWait(t, "the batch queued", queued(len(results)))
		alice.b.gmu.Unlock()
		wg.Wait()
		for i, err := range results {
			switch {
			case failing && i == 2:
				if err == nil || errors.Is(err, errSendFailed) {
					t.Fatalf("round %d: the failing send answered %v, want its own error", round, err)
				}
			case err != nil:
				t.Fatalf("round %d: send %d: %v", round, i, err)
			}
		}
	}
	want := []string{"r0-0", "r0-1", "r0-2", "r0-3", "r0-4", "r0-first", "r1-0", "r1-1", "r1-3", "r1-4", "r1-first"}
	groupsWait(t, "every text at bob, once", func() bool {
		got := groupsTexts(t, bob, gid)
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}
