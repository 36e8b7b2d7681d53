package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// The items committed after BeginOutboxRead are handed over in commit
// order, without those of a rolled-back savepoint; a commit that did more
// to the outbox than add application items, a list past its bound, or
// another read's token makes FreshOutbox answer that the outbox must be
// read.
func TestFreshOutbox(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	k := bytes.Repeat([]byte{1}, 32)
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutGroup(Group{ID: testGroupID(1), Name: "g", State: []byte("s")}) })
	add := func(tx *Tx, p string) (OutboxItem, error) {
		return tx.AddOutbox(OutboxItem{Kind: OutboxApplication, GroupID: testGroupID(1), Payload: []byte(p), Recipients: [][]byte{k}})
	}
	payloads := func(items []OutboxItem) []string {
		var out []string
		for _, it := range items {
			out = append(out, string(it.Payload))
		}
		return out
	}
	tok := st.BeginOutboxRead()
	var ids []int64
	mustUpdate(t, st, func(tx *Tx) error {
		it, err := add(tx, "a")
		ids = append(ids, it.ID)
		return err
	})
	boom := errors.New("boom")
	mustUpdate(t, st, func(tx *Tx) error {
		if err := tx.Savepoint(func(tx *Tx) error {
			if _, err := add(tx, "rolled back"); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			return fmt.Errorf("savepoint: %v", err)
		}
		it, err := add(tx, "b")
		ids = append(ids, it.ID)
		return err
	})
	items, ok := st.FreshOutbox(tok)
	if got := payloads(items); !ok || !slices.Equal(got, []string{"a", "b"}) || items[0].ID != ids[0] || items[1].ID != ids[1] {
		t.Fatalf("handed over %q (ok %v), want a and b", got, ok)
	}
	if items, ok := st.FreshOutbox(tok); !ok || len(items) != 0 {
		t.Fatalf("handed over again: %d items, ok %v", len(items), ok)
	}
	// An item moved back to pending (or any other outbox change) is not
	// in the list: the list is incomplete until the next read.
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetOutboxState(ids[0], OutboxPending, "retry") })
	mustUpdate(t, st, func(tx *Tx) error { _, err := add(tx, "c"); return err })
	if items, ok := st.FreshOutbox(tok); ok {
		t.Fatalf("after a retry: handed over %q", payloads(items))
	}
	// A commit item, too.
	tok = st.BeginOutboxRead()
	mustUpdate(t, st, func(tx *Tx) error {
		_, err := tx.AddOutbox(OutboxItem{Kind: OutboxCommit, GroupID: testGroupID(1), Payload: []byte("commit"), Recipients: [][]byte{k}})
		return err
	})
	if items, ok := st.FreshOutbox(tok); ok {
		t.Fatalf("after a commit item: handed over %q", payloads(items))
	}
	// Past the bound.
	tok = st.BeginOutboxRead()
	mustUpdate(t, st, func(tx *Tx) error {
		for i := range freshMaxItems + 1 {
			if _, err := add(tx, fmt.Sprint(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if items, ok := st.FreshOutbox(tok); ok {
		t.Fatalf("past the bound: handed over %d items", len(items))
	}
	// Another read's token.
	tok = st.BeginOutboxRead()
	st.BeginOutboxRead()
	if _, ok := st.FreshOutbox(tok); ok {
		t.Fatal("handed over to an old read")
	}
}
