package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

// The identity read again is the same key, and each read is the caller's
// own copy: clearing one (as callers do with secrets) spoils no other.
func TestIdentityKeyReusedAsCopies(t *testing.T) {
	st, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx *Tx) error { return tx.PutIdentity(Identity{PrivateKey: priv}) }); err != nil {
		t.Fatal(err)
	}
	read := func() ed25519.PrivateKey {
		var id Identity
		if err := st.View(ctx, func(tx *Tx) (err error) { id, err = tx.Identity(); return }); err != nil {
			t.Fatal(err)
		}
		return id.PrivateKey
	}
	first := read()
	if !bytes.Equal(first, priv) {
		t.Fatal("identity read back differs")
	}
	clear(first)
	if again := read(); !bytes.Equal(again, priv) {
		t.Fatal("clearing one read spoiled the next")
	}
	var k expandedKey
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if !bytes.Equal(k.privateKey(priv.Seed()), priv) || !bytes.Equal(k.privateKey(other.Seed()), other) {
		t.Fatal("a new seed was not expanded anew")
	}
}

// Once read from the committed row, the identity is read again without a
// statement, as the caller's own copy; an identity written by a
// transaction that rolled back is never kept.
func TestIdentityKeptOnceCommitted(t *testing.T) {
	st, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	errBack := errors.New("roll back")
	err = st.Update(ctx, func(tx *Tx) error {
		if err := tx.PutIdentity(Identity{PrivateKey: priv}); err != nil {
			return err
		}
		if _, err := tx.Identity(); err != nil {
			return err
		}
		return errBack
	})
	if !errors.Is(err, errBack) {
		t.Fatal(err)
	}
	read := func() (Identity, int64, error) {
		var id Identity
		n0 := st.WriteStatements()
		err := st.Update(ctx, func(tx *Tx) (err error) { id, err = tx.Identity(); return })
		return id, st.WriteStatements() - n0, err
	}
	if _, _, err := read(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("identity of a rolled-back transaction: %v", err)
	}
	if err := st.Update(ctx, func(tx *Tx) error { return tx.PutIdentity(Identity{PrivateKey: priv}) }); err != nil {
		t.Fatal(err)
	}
	first, _, err := read()
	if err != nil || !bytes.Equal(first.PrivateKey, priv) || !bytes.Equal(first.UserKey, priv) {
		t.Fatalf("identity read back differs (%v)", err)
	}
	first.Wipe()
	again, n, err := read()
	if err != nil || !bytes.Equal(again.PrivateKey, priv) || !bytes.Equal(again.UserKey, priv) {
		t.Fatalf("wiping one read spoiled the next (%v)", err)
	}
	if n != 0 {
		t.Errorf("the identity read again ran %d statements, want 0", n)
	}
}

// Close wipes the expanded identity key the store kept.
func TestCloseWipesKeptKey(t *testing.T) {
	st, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx *Tx) error { return tx.PutIdentity(Identity{PrivateKey: priv}) }); err != nil {
		t.Fatal(err)
	}
	if err := st.View(ctx, func(tx *Tx) error { id, err := tx.Identity(); id.Wipe(); return err }); err != nil {
		t.Fatal(err)
	}
	kept := st.keys.priv
	if len(kept) == 0 {
		t.Fatal("no key kept after a read")
	}
	st.Close()
	if !bytes.Equal(kept, make([]byte, len(kept))) || st.keys.priv != nil {
		t.Fatal("the kept identity key survived Close")
	}
}
