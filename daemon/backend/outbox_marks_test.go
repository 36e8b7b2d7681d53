package backend

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// A read of the outbox can return a full page of items the node has
// taken whose sent marks are not committed yet. The items after that
// page must still go out once the marks are in: nothing else wakes the
// sender for them. (Before the sender waited for the marks it stopped
// there until the next send or reconnect; a node restart under a rate
// limit showed it end to end.)
func TestOutboxFullPageOfUnmarkedItems(t *testing.T) {
	bs := &blockingFanOutStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		bs.Store = st
		return bs
	})
	// A long backoff: the test holds Alice's store before her retry.
	alice := groupsStartOn(t, node, Config{}, nil, func(b *Backend) { b.cfg.MinBackoff, b.cfg.MaxBackoff = 4*time.Second, 4*time.Second })
	bob := groupsStart(t, node)
	ctx := context.Background()
	g, gid := groupsForm(t, "page", alice, bob)
	bs.mu.Lock()
	bs.group, bs.sender, bs.after, bs.block = g.ID, alice.id, 0, true
	bs.mu.Unlock()
	const total = sendPage + sendPage/2
	var want []string
	for i := range total {
		text := fmt.Sprintf("m%03d", i)
		want = append(want, text)
		if _, err := alice.b.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "the node refuses the first message", func() bool {
		bs.mu.Lock()
		defer bs.mu.Unlock()
		return bs.refused >= 1
	})
	// Hold Alice's writer, so that the marks of what the node takes next
	// stay in flight, then let the node take everything.
	held, release := make(chan struct{}), make(chan struct{})
	holding := make(chan error, 1)
	go func() {
		holding <- alice.b.st.Update(ctx, func(*store.Tx) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	reads := alice.b.outboxReads.Load()
	bs.mu.Lock()
	bs.block = false
	bs.mu.Unlock()
	// The retry takes the first page (two batches); the read after it
	// finds that page again, every item of it in flight.
	groupsWait(t, "the first page taken and read again", func() bool {
		bs.mu.Lock()
		passed := bs.passed
		bs.mu.Unlock()
		return passed >= sendPage && alice.b.outboxReads.Load() >= reads+2
	})
	close(release)
	if err := <-holding; err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "every message arrives", func() bool { return len(groupsTexts(t, bob, gid)) >= total })
	if got := groupsTexts(t, bob, gid); !slices.Equal(got, want) {
		t.Fatalf("bob reads %q, want %q", got, want)
	}
}

// Marks committed together: a mark that fails (its item gone) is skipped,
// and the marks beside it are committed, once; without a failure they
// commit as they ran.
func TestSentMarksBesideAFailingOne(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Not run: no outbox sender of its own touches the items.
	be, err := New(Config{Store: st, Logger: testnode.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	alice := &groupsUser{b: be}
	var items []store.OutboxItem
	if err := alice.b.st.Update(ctx, func(tx *store.Tx) error {
		for i := range 4 {
			it, err := tx.AddOutbox(store.OutboxItem{Kind: store.OutboxApplication, ClientMsgID: fmt.Appendf(nil, "mark-%d", i),
				Payload: []byte("x"), Recipients: [][]byte{bytes.Repeat([]byte{9}, 32)}})
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	state := func(it store.OutboxItem) store.OutboxState {
		t.Helper()
		var got store.OutboxItem
		if err := alice.b.st.View(ctx, func(tx *store.Tx) (err error) { got, err = tx.Outbox(it.ID); return }); err != nil {
			t.Fatal(err)
		}
		return got.State
	}
	if err := alice.b.markSent(ctx, []sentMark{{it: items[0]}, {it: items[1]}}); err != nil {
		t.Fatal(err)
	}
	gone := store.OutboxItem{ID: 1 << 40}
	if err := alice.b.markSent(ctx, []sentMark{{it: items[2]}, {it: gone}, {it: items[3]}}); err == nil {
		t.Fatal("a mark of a missing item did not fail")
	}
	for i, it := range items {
		if s := state(it); s != store.OutboxSent {
			t.Errorf("item %d is %q, want sent", i, s)
		}
	}
}
