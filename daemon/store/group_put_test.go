package store

import (
	"bytes"
	"context"
	"testing"
)

// A group saved again at the same epoch and name is two statements (its
// state and its row); a new name or epoch takes the full path, and a new
// epoch scrubs the old one's keys.
func TestPutGroupPaths(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	g := Group{ID: testGroupID(9), Name: "team", State: []byte{1}, Epoch: 2}
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutGroup(g) })
	put := func(g Group) (statements int64, scrub bool) {
		t.Helper()
		mustUpdate(t, st, func(tx *Tx) error {
			n0 := st.WriteStatements()
			err := tx.PutGroup(g)
			statements, scrub = st.WriteStatements()-n0, tx.scrub
			return err
		})
		return statements, scrub
	}
	check := func(want Group) {
		t.Helper()
		st.View(context.Background(), func(tx *Tx) error {
			got, err := tx.Group(want.ID)
			if err != nil || got.Epoch != want.Epoch || got.Name != want.Name || !bytes.Equal(got.State, want.State) {
				t.Fatalf("got %+v %v, want %+v", got, err, want)
			}
			if byName, err := tx.GroupsByName(want.Name); err != nil || len(byName) != 1 {
				t.Fatalf("by name %q: %v %v", want.Name, byName, err)
			}
			return nil
		})
	}
	g.State = []byte{2}
	if n, scrub := put(g); n != 2 || scrub {
		t.Errorf("same epoch and name: %d statements, scrub %v; want 2, false", n, scrub)
	}
	check(g)
	g.Name, g.State = "renamed", []byte{3}
	if _, scrub := put(g); scrub {
		t.Error("a new name at the same epoch scrubs")
	}
	check(g)
	g.Epoch, g.State = 3, []byte{4}
	if _, scrub := put(g); !scrub {
		t.Error("a new epoch does not scrub the old one's keys")
	}
	check(g)
}
