package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
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
