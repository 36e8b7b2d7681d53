package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// Messages that reach a member in one pushed batch are acknowledged by
// one delivery receipt naming them all, and the sender sees each of them
// delivered.
func TestBatchSendsOneDeliveryReceipt(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "receipts", alice, bob)
	ctx := context.Background()
	st := bob.b.st
	receipts := func() int { return receiptItems(t, st) }
	before := receipts()
	bob.stop()
	const n = 6
	var ids [][]byte
	for i := range n {
		r, err := alice.b.Send(ctx, gid, fmt.Sprintf("m%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Message.MessageID)
	}
	bob = groupsStartOn(t, node, Config{}, st)
	groupsWait(t, "bob has every message", func() bool { return len(groupsTexts(t, bob, gid)) == n })
	groupsWait(t, "alice sees every message delivered", func() bool {
		for _, id := range ids {
			m, ok := contentMessage(t, alice, gid, id)
			if !ok || len(m.Receipts) != 1 || !bytes.Equal(m.Receipts[0].Member, bob.id) {
				return false
			}
		}
		return true
	})
	if got := receipts() - before; got < 1 || got >= n {
		t.Fatalf("%d delivery receipts for %d messages that arrived together", got, n)
	}
}

// receiptItems counts the receipts in st's outbox.
func receiptItems(t *testing.T, st *store.Store) int {
	t.Helper()
	n := 0
	if err := st.View(context.Background(), func(tx *store.Tx) error {
		for id := int64(1); ; id++ {
			it, err := tx.Outbox(id)
			if errors.Is(err, store.ErrNotFound) {
				if id > 1000 {
					return nil
				}
				continue
			}
			if err != nil {
				return err
			}
			if bytes.HasPrefix(it.ClientMsgID, []byte("r:")) {
				n++
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// Messages that arrive one after the other, each in a push of its own,
// within the receipt delay, share one delivery receipt, sent after the
// messages are shown.
func TestDeliveryReceiptsOfSeparatePushesShareOne(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := groupsStart(t, node)
	bob := groupsStartWith(t, node, Config{ReceiptDelay: 2 * time.Second})
	_, gid := groupsForm(t, "receipts", alice, bob)
	ctx := context.Background()
	before := receiptItems(t, bob.b.st)
	const n = 4
	var ids [][]byte
	for i := range n {
		r, err := alice.b.Send(ctx, gid, fmt.Sprintf("m%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Message.MessageID)
		groupsWait(t, "bob has the message", func() bool { return len(groupsTexts(t, bob, gid)) == i+1 })
	}
	groupsWait(t, "alice sees every message delivered", func() bool {
		for _, id := range ids {
			m, ok := contentMessage(t, alice, gid, id)
			if !ok || len(m.Receipts) != 1 || !bytes.Equal(m.Receipts[0].Member, bob.id) {
				return false
			}
		}
		return true
	})
	if got := receiptItems(t, bob.b.st) - before; got != 1 {
		t.Fatalf("%d delivery receipts for %d messages within the receipt delay, want 1", got, n)
	}
}

// A receipt still owed when the daemon stops is noted in the store with
// its message, not in memory, and goes out once it runs again: a stop
// sends nothing (so a kill loses nothing a stop would have sent).
func TestOwedReceiptSentAfterRestart(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := groupsStart(t, node)
	bob := groupsStartWith(t, node, Config{ReceiptDelay: time.Hour})
	_, gid := groupsForm(t, "receipts", alice, bob)
	ctx := context.Background()
	st := bob.b.st
	r, err := alice.b.Send(ctx, gid, "owed", nil)
	if err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob has the message", func() bool { return len(groupsTexts(t, bob, gid)) == 1 })
	var owed []store.OwedReceipt
	if err := st.View(ctx, func(tx *store.Tx) (err error) { owed, err = tx.OwedReceipts(10); return }); err != nil {
		t.Fatal(err)
	}
	if len(owed) != 1 || !bytes.Equal(owed[0].MessageID, r.Message.MessageID) || FormatKey(owed[0].GroupID) != gid {
		t.Fatalf("owed receipts in the store with the message: %+v", owed)
	}
	before := receiptItems(t, st)
	bob.stop()
	if got := receiptItems(t, st) - before; got != 0 {
		t.Fatalf("a stop wrote %d receipts", got)
	}
	bob = groupsStartOn(t, node, Config{}, st)
	groupsWait(t, "alice sees the message delivered", func() bool {
		m, ok := contentMessage(t, alice, gid, r.Message.MessageID)
		return ok && len(m.Receipts) == 1 && bytes.Equal(m.Receipts[0].Member, bob.id)
	})
}

// A receipt owed in a group whose commit waits for the node's verdict
// (its submission failed with the connection) goes out once the commit is
// merged, in the new epoch, instead of being dropped.
func TestOwedReceiptWaitsForPendingCommit(t *testing.T) {
	dir := t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	alice := groupsStart(t, node)
	const delay = 500 * time.Millisecond
	bob := groupsStartWith(t, node, Config{ReceiptDelay: delay})
	_, gid := groupsForm(t, "pending", alice, bob)
	ctx := context.Background()
	r, err := alice.b.Send(ctx, gid, "owed", nil)
	if err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob has the message", func() bool { return len(groupsTexts(t, bob, gid)) == 1 })
	arrived := time.Now()
	var once sync.Once
	bob.b.beforeSubmit = func() { once.Do(node.Stop) }
	if _, err := bob.b.Update(ctx, gid); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("update with the node gone: %v", err)
	}
	// The owed receipt's turn comes while the commit is pending.
	time.Sleep(time.Until(arrived.Add(2 * delay)))
	testnode.StartNode(t, dir, node.Addr)
	groupsWait(t, "alice sees the message delivered", func() bool {
		m, ok := contentMessage(t, alice, gid, r.Message.MessageID)
		return ok && len(m.Receipts) == 1 && bytes.Equal(m.Receipts[0].Member, bob.id)
	})
}

// A member with receipts off notes none as owed: the message it receives
// leaves no row behind and calls for no later transaction.
func TestNoReceiptsOwesNone(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := groupsStart(t, node)
	bob := groupsStartWith(t, node, Config{NoReceipts: true, ReceiptDelay: time.Hour})
	_, gid := groupsForm(t, "quiet", alice, bob)
	ctx := context.Background()
	if _, err := alice.b.Send(ctx, gid, "hello", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob has the message", func() bool { return len(groupsTexts(t, bob, gid)) == 1 })
	var owed []store.OwedReceipt
	if err := bob.b.st.View(ctx, func(tx *store.Tx) (err error) { owed, err = tx.OwedReceipts(10); return }); err != nil {
		t.Fatal(err)
	}
	if len(owed) != 0 {
		t.Fatalf("receipts off, yet %d noted as owed", len(owed))
	}
}
