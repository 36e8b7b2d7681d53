package store

import (
	"context"
	"errors"
	"testing"
)

type memoValue struct{ n int }

// A decoded value returns to the next transaction only when the one that
// kept it committed and the row still holds the bytes it was kept with;
// a rolled-back transaction or savepoint, a value used without being kept,
// a row written by another path and a View all decode afresh.
func TestDecodedMemo(t *testing.T) {
	st, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	decodes := 0
	decode := func(raw []byte) (any, error) {
		decodes++
		return &memoValue{n: int(raw[0])}, nil
	}
	const key = "k"
	// load returns the value for raw in tx and whether it was decoded.
	load := func(tx *Tx, raw []byte) (*memoValue, bool) {
		before := decodes
		v, err := tx.Decoded(key, raw, decode)
		if err != nil {
			t.Fatal(err)
		}
		return v.(*memoValue), decodes > before
	}
	one, two := []byte{1}, []byte{2}
	var kept *memoValue
	if err := st.Update(ctx, func(tx *Tx) error {
		v, fresh := load(tx, one)
		if !fresh {
			t.Error("first load not decoded")
		}
		v.n = 2
		tx.KeepDecoded(key, two, v)
		kept = v
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Committed: the next transaction gets the same value for the bytes
	// kept, and only for them.
	if err := st.Update(ctx, func(tx *Tx) error {
		if v, fresh := load(tx, two); fresh || v != kept {
			t.Errorf("kept value not returned (fresh %v)", fresh)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Used without being kept again: gone.
	if err := st.Update(ctx, func(tx *Tx) error {
		if _, fresh := load(tx, two); !fresh {
			t.Error("a value taken and not kept came back")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keep := func(raw []byte, fail error) {
		t.Helper()
		if err := st.Update(ctx, func(tx *Tx) error {
			v, _ := load(tx, raw)
			tx.KeepDecoded(key, raw, v)
			return fail
		}); !errors.Is(err, fail) {
			t.Fatal(err)
		}
	}
	keep(two, nil)
	keep(two, ErrInvalid) // rolled back: forgotten, and taken
	if err := st.Update(ctx, func(tx *Tx) error {
		if _, fresh := load(tx, two); !fresh {
			t.Error("a value kept by a rolled-back transaction came back")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keep(two, nil)
	// The row holds other bytes now (written by another path): decoded.
	if err := st.Update(ctx, func(tx *Tx) error {
		if _, fresh := load(tx, one); !fresh {
			t.Error("a value kept for other bytes was returned")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keep(two, nil)
	// Views decode, and leave the memo alone.
	if err := st.View(ctx, func(tx *Tx) error {
		v, fresh := load(tx, two)
		tx.KeepDecoded(key, two, v)
		if !fresh {
			t.Error("a View was handed the kept value")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Within one transaction: a value kept by a savepoint that rolls back
	// is forgotten, and one taken inside it stays taken; one kept by a
	// savepoint that succeeds is handed to the next.
	if err := st.Update(ctx, func(tx *Tx) error {
		var inner *memoValue
		if err := tx.Savepoint(func(tx *Tx) error {
			v, fresh := load(tx, two)
			if fresh {
				t.Error("the value kept before the View was lost")
			}
			inner = v
			tx.KeepDecoded(key, two, v)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Savepoint(func(tx *Tx) error {
			v, fresh := load(tx, two)
			if fresh || v != inner {
				t.Error("a value kept by an earlier savepoint was not handed on")
			}
			v.n = 99 // changed, then the savepoint fails
			tx.KeepDecoded(key, two, v)
			return ErrInvalid
		}); !errors.Is(err, ErrInvalid) {
			return err
		}
		if v, fresh := load(tx, two); !fresh || v.n != 2 {
			t.Errorf("after a failed savepoint: value %d, fresh %v", v.n, fresh)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Values not handed out by Decoded are never kept.
	if err := st.Update(ctx, func(tx *Tx) error {
		tx.KeepDecoded(key, one, &memoValue{n: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx *Tx) error {
		if _, fresh := load(tx, one); !fresh {
			t.Error("a value Decoded never handed out was kept")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// The memo stays within its bounds.
func TestDecodedMemoBounds(t *testing.T) {
	var m memo
	for i := range memoEntries * 2 {
		m.put([]keptValue{{key: string(rune('a' + i)), raw: []byte{byte(i)}, v: &memoValue{}}})
	}
	if len(m.m.m) > memoEntries {
		t.Fatalf("%d entries, bound %d", len(m.m.m), memoEntries)
	}
	m.put([]keptValue{{key: "big", raw: make([]byte, memoBytes+1), v: &memoValue{}}})
	if m.m.bytes > memoBytes {
		t.Fatalf("%d bytes, bound %d", m.m.bytes, memoBytes)
	}
	m.forget()
	if len(m.m.m) != 0 || m.m.bytes != 0 {
		t.Fatal("forget kept values")
	}
}
