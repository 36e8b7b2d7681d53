package store

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// The statements of a transaction are prepared after it and run prepared
// from the next one on, in Update, UpdateNoSync and View alike; the cache
// stops growing at maxPrepared and the statements past it still run.
func TestPreparedStatements(t *testing.T) {
	st, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	gid := bytes.Repeat([]byte{1}, GroupIDSize)
	put := func(tx *Tx) error { return tx.PutGroup(Group{ID: gid, Name: "g", State: []byte{1}}) }
	if err := st.Update(ctx, put); err != nil {
		t.Fatal(err)
	}
	n := len(st.stmts.prepared)
	if n == 0 {
		t.Fatal("nothing prepared after a transaction")
	}
	for _, run := range []func(context.Context, func(*Tx) error) error{st.Update, st.UpdateNoSync} {
		if err := run(ctx, put); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(st.stmts.prepared); got != n {
		t.Fatalf("%d statements prepared after running the same ones again, want %d", got, n)
	}
	if err := st.View(ctx, func(tx *Tx) error {
		g, err := tx.Group(gid)
		if err == nil && !bytes.Equal(g.State, []byte{1}) {
			err = fmt.Errorf("state %x", g.State)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Savepoints, rolled back or not, run prepared too.
	for range 3 {
		if err := st.Update(ctx, func(tx *Tx) error {
			_ = tx.Savepoint(func(tx *Tx) error { return put(tx) })
			return tx.Savepoint(func(tx *Tx) error { put(tx); return ErrInvalid })
		}); err == nil {
			t.Fatal("the failed savepoint's error was not returned")
		}
	}
	for i := range maxPrepared + 10 {
		q := fmt.Sprintf("SELECT %d", i)
		if err := st.View(ctx, func(tx *Tx) error {
			var v int
			if err := tx.queryRow(q).Scan(&v); err != nil || v != i {
				return fmt.Errorf("%s = %d, %v", q, v, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(st.stmts.prepared); got > maxPrepared {
		t.Fatalf("%d statements prepared, bound %d", got, maxPrepared)
	}
}
