package store

import (
	"context"
	"testing"
)

// TestOutboxChangedSignals: OutboxChanged fires after commits that may
// make an item pending, and not after a sent mark or unrelated writes.
func TestOutboxChangedSignals(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	ctx := context.Background()
	fired := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := st.OutboxChanged()
	var it OutboxItem
	mustUpdate(t, st, func(tx *Tx) (err error) {
		it, err = tx.AddOutbox(OutboxItem{Kind: OutboxApplication, Payload: []byte("m"), ClientMsgID: []byte("c:1"), Recipients: [][]byte{make([]byte, 32)}})
		return err
	})
	if !fired(ch) {
		t.Fatal("no signal after an item was added")
	}
	ch = st.OutboxChanged()
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetNodeCursor(4) })
	if err := st.UpdateNoSync(ctx, func(tx *Tx) error { return tx.SetOutboxState(it.ID, OutboxSent, "") }); err != nil {
		t.Fatal(err)
	}
	if fired(ch) {
		t.Fatal("signal after a sent mark and an unrelated write")
	}
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetOutboxState(it.ID, OutboxPending, "retry") })
	if !fired(ch) {
		t.Fatal("no signal after an item went back to pending")
	}
	ch = st.OutboxChanged()
	st.Update(ctx, func(tx *Tx) error {
		if _, err := tx.AddOutbox(OutboxItem{Kind: OutboxApplication, Payload: []byte("m"), ClientMsgID: []byte("c:2"), Recipients: [][]byte{make([]byte, 32)}}); err != nil {
			return err
		}
		return ErrInvalid // rolled back
	})
	if fired(ch) {
		t.Fatal("signal after a rolled-back transaction")
	}
}
