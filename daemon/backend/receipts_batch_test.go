package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

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
	receipts := func() int {
		n := 0
		if err := st.View(ctx, func(tx *store.Tx) error {
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
