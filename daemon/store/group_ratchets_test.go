package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// Ratchets go only onto the state they were moved from: another tag, epoch
// or name writes nothing, and a whole write drops them.
func TestPutGroupRatchets(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	id := bytes.Repeat([]byte{4}, GroupIDSize)
	var sg Group
	mustUpdate(t, st, func(tx *Tx) (err error) {
		if err := tx.PutGroup(Group{ID: id, Name: "g", State: []byte("state"), Epoch: 3}); err != nil {
			return err
		}
		sg, err = tx.Group(id)
		return err
	})
	if len(sg.StateTag) != stateTagSize || sg.Ratchets != nil {
		t.Fatalf("new group: tag %x ratchets %x", sg.StateTag, sg.Ratchets)
	}
	put := func(g Group) bool {
		var ok bool
		mustUpdate(t, st, func(tx *Tx) (err error) { ok, err = tx.PutGroupRatchets(g); return })
		return ok
	}
	read := func() (g Group) {
		mustUpdate(t, st, func(tx *Tx) (err error) { g, err = tx.Group(id); return })
		return g
	}
	for name, g := range map[string]Group{
		"other tag":   {ID: id, Name: "g", Epoch: 3, StateTag: NewStateTag(), Ratchets: []byte("r")},
		"other epoch": {ID: id, Name: "g", Epoch: 4, StateTag: sg.StateTag, Ratchets: []byte("r")},
		"other name":  {ID: id, Name: "h", Epoch: 3, StateTag: sg.StateTag, Ratchets: []byte("r")},
		"no tag":      {ID: id, Name: "g", Epoch: 3, Ratchets: []byte("r")},
	} {
		if put(g) {
			t.Errorf("%s: ratchets written", name)
		}
	}
	if got := read(); got.Ratchets != nil {
		t.Fatalf("refused ratchets stored: %x", got.Ratchets)
	}
	small := sg
	small.Ratchets, small.JoinReported = []byte("moved"), true
	if !put(small) {
		t.Fatal("ratchets onto their own state refused")
	}
	if got := read(); string(got.Ratchets) != "moved" || string(got.State) != "state" || !bytes.Equal(got.StateTag, sg.StateTag) || !got.JoinReported {
		t.Fatalf("after ratchets: %+v", got)
	}
	whole := read()
	whole.State, whole.Ratchets, whole.StateTag = []byte("state 2"), nil, nil
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutGroup(whole) })
	if got := read(); got.Ratchets != nil || bytes.Equal(got.StateTag, sg.StateTag) || len(got.StateTag) != stateTagSize {
		t.Fatalf("after a whole write: ratchets %x tag %x (was %x)", got.Ratchets, got.StateTag, sg.StateTag)
	}
}

// AfterCommit runs once its transaction commits, not when it or the
// savepoint it was registered in rolls back.
func TestAfterCommit(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	var ran []string
	note := func(s string) func() { return func() { ran = append(ran, s) } }
	failed := errors.New("no")
	mustUpdate(t, st, func(tx *Tx) error {
		tx.AfterCommit(note("outer"))
		if err := tx.Savepoint(func(tx *Tx) error { tx.AfterCommit(note("rolled back")); return failed }); !errors.Is(err, failed) {
			return err
		}
		return tx.Savepoint(func(tx *Tx) error { tx.AfterCommit(note("kept")); return nil })
	})
	if err := st.Update(context.Background(), func(tx *Tx) error { tx.AfterCommit(note("failed tx")); return failed }); !errors.Is(err, failed) {
		t.Fatal(err)
	}
	if want := []string{"outer", "kept"}; len(ran) != 2 || ran[0] != want[0] || ran[1] != want[1] {
		t.Fatalf("ran %q, want %q", ran, want)
	}
}

// A group's state moves to group_states, and a transaction that reads a
// group whose state the store keeps reads no state.
func TestGroupStates(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	id := bytes.Repeat([]byte{5}, GroupIDSize)
	state := bytes.Repeat([]byte{7}, 10000)
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutGroup(Group{ID: id, Name: "g", State: state, Epoch: 1}) })
	reads := func() int64 {
		t.Helper()
		n0 := st.WriteStatements()
		mustUpdate(t, st, func(tx *Tx) error {
			g, err := tx.Group(id)
			if err == nil && !bytes.Equal(g.State, state) {
				t.Fatalf("state of %d bytes read back as %d", len(state), len(g.State))
			}
			return err
		})
		return st.WriteStatements() - n0
	}
	if n := reads(); n != 1 {
		t.Errorf("a kept state: %d statements, want 1 (the row)", n)
	}
	st.states.forget()
	if n := reads(); n != 2 {
		t.Errorf("a state not kept: %d statements, want 2 (the row, the state)", n)
	}
	if n := reads(); n != 1 {
		t.Errorf("a state read once: %d statements, want 1", n)
	}

	// A store of schema 15 kept the state in the groups row.
	for _, q := range []string{
		"DROP TABLE group_states",
		"PRAGMA user_version = 15",
	} {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.db.Exec(`UPDATE groups SET state = ?`, state); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTestStore(t, dir)
	if n := reads(); n != 2 {
		t.Errorf("after the migration: %d statements", n)
	}
	var left int
	if err := st.db.QueryRow(`SELECT length(state) FROM groups`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("the groups row keeps %d bytes of state (%v)", left, err)
	}
}

// The kept states stay within their bounds, and a state is given only for
// the tag it was written with.
func TestStateCacheBounds(t *testing.T) {
	var c stateCache
	for i := range stateCacheEntries * 2 {
		c.put([]byte{byte(i)}, []byte{1}, []byte{byte(i)})
	}
	if n := len(c.m.m); n > stateCacheEntries {
		t.Fatalf("%d states, bound %d", n, stateCacheEntries)
	}
	c.put([]byte("big"), []byte{1}, make([]byte, stateCacheBytes+1))
	if c.m.bytes > stateCacheBytes {
		t.Fatalf("%d bytes, bound %d", c.m.bytes, stateCacheBytes)
	}
	c.put([]byte("g"), []byte{1}, []byte("one"))
	if st, ok := c.get([]byte("g"), []byte{2}); ok {
		t.Fatalf("another tag's state given: %q", st)
	}
	st, ok := c.get([]byte("g"), []byte{1})
	if !ok || string(st) != "one" {
		t.Fatalf("the state kept: %q %v", st, ok)
	}
	c.forget() // at Close: the states' secrets are wiped
	if string(st) != "\x00\x00\x00" || len(c.m.m) != 0 {
		t.Fatalf("after forget: %q, %d kept", st, len(c.m.m))
	}
}
