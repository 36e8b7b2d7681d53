package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// MergedInto answers from the committed direct chats without a statement
// once read; a merge in a transaction is seen by that transaction, and one
// rolled back by none after it.
func TestMergedIntoKeepsCommittedRows(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	ctx := context.Background()
	peer := bytes.Repeat([]byte{7}, 32)
	a, b, c := bytes.Repeat([]byte{1}, GroupIDSize), bytes.Repeat([]byte{2}, GroupIDSize), bytes.Repeat([]byte{3}, GroupIDSize)
	mustUpdate(t, st, func(tx *Tx) error {
		for _, id := range [][]byte{a, b, c} {
			if err := tx.PutGroup(Group{ID: id, Name: "d", State: []byte("s")}); err != nil {
				return err
			}
		}
		return tx.PutDirectChat(DirectChat{GroupID: b, Peer: peer, MergedInto: a})
	})
	ask := func(gid []byte) ([]byte, int64) {
		t.Helper()
		var into []byte
		n0 := st.WriteStatements()
		mustUpdate(t, st, func(tx *Tx) (err error) { into, err = tx.MergedInto(gid); return })
		return into, st.WriteStatements() - n0
	}
	if into, _ := ask(b); !bytes.Equal(into, a) {
		t.Fatalf("MergedInto(b) = %x, want a", into)
	}
	for _, gid := range [][]byte{a, b, c} {
		into, n := ask(gid)
		if n != 0 {
			t.Errorf("MergedInto asked again ran %d statements, want 0", n)
		}
		if want := map[bool][]byte{true: a}[bytes.Equal(gid, b)]; !bytes.Equal(into, want) {
			t.Errorf("MergedInto(%x) = %x, want %x", gid[:1], into, want)
		}
	}
	errBack := errors.New("roll back")
	err := st.Update(ctx, func(tx *Tx) error {
		if err := tx.PutDirectChat(DirectChat{GroupID: c, Peer: peer, MergedInto: a}); err != nil {
			return err
		}
		if into, err := tx.MergedInto(c); err != nil || !bytes.Equal(into, a) {
			t.Errorf("MergedInto(c) in the merging transaction = %x, %v; want a", into, err)
		}
		return errBack
	})
	if !errors.Is(err, errBack) {
		t.Fatal(err)
	}
	if into, _ := ask(c); into != nil {
		t.Errorf("MergedInto(c) after the merge rolled back = %x, want none", into)
	}
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutDirectChat(DirectChat{GroupID: c, Peer: peer, MergedInto: b}) })
	if into, _ := ask(c); !bytes.Equal(into, b) {
		t.Errorf("MergedInto(c) after the merge committed = %x, want b", into)
	}
}
