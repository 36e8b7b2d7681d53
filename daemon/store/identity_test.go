package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

func readIdentity(t *testing.T, st *Store) Identity {
	t.Helper()
	var id Identity
	if err := st.View(context.Background(), func(tx *Tx) (err error) { id, err = tx.Identity(); return }); err != nil {
		t.Fatalf("Identity: %v", err)
	}
	return id
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestIdentityFromPreviousSchema: an identity written by the schema before
// device keys (version 9: one key, both user and device) reads as a
// single-device identity that holds its user key.
func TestIdentityFromPreviousSchema(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	for _, q := range []string{
		"ALTER TABLE messages DROP COLUMN sender_device",
		"ALTER TABLE messages DROP COLUMN sender_device_name",
		"ALTER TABLE identity DROP COLUMN user_key",
		"ALTER TABLE identity DROP COLUMN user_seed",
		"ALTER TABLE identity DROP COLUMN device_cert",
		"ALTER TABLE identity DROP COLUMN user_cert",
		"ALTER TABLE outbox DROP COLUMN fan_out",
		"ALTER TABLE groups DROP COLUMN ratchets",
		"ALTER TABLE groups DROP COLUMN state_tag",
		"PRAGMA user_version = 9",
	} {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	k := newKey(t)
	pub := k.Public().(ed25519.PublicKey)
	if _, err := st.db.Exec(`INSERT INTO identity (id, public_key, seed, created_at) VALUES (1, ?, ?, 1)`, []byte(pub), k.Seed()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	id := readIdentity(t, openTestStore(t, dir))
	if !id.PublicKey().Equal(pub) || !id.UserPublicKey().Equal(pub) || !id.SingleDevice() || !id.Primary() || id.Chain != nil {
		t.Fatalf("old identity read as device %x user %x single %v primary %v chain %d", id.PublicKey(), id.UserPublicKey(), id.SingleDevice(), id.Primary(), len(id.Chain))
	}
	if !id.UserKey.Equal(k) {
		t.Fatal("old identity's user key is not its key")
	}
}

// TestIdentityLinkedDevice: a linked device keeps its key, the user key
// (public only) and its chain; a restored device also the user's private
// key.
func TestIdentityLinkedDevice(t *testing.T) {
	user, dev := newKey(t), newKey(t)
	userPub := user.Public().(ed25519.PublicKey)
	chain := [][]byte{[]byte("device cert"), []byte("user cert")}
	for _, primary := range []bool{false, true} {
		dir := t.TempDir()
		st := openTestStore(t, dir)
		in := Identity{PrivateKey: dev, User: userPub, Chain: chain}
		if primary {
			in.UserKey = user
		}
		mustUpdate(t, st, func(tx *Tx) error { return tx.PutIdentity(in) })
		st.Close()
		id := readIdentity(t, openTestStore(t, dir))
		if !id.PublicKey().Equal(dev.Public()) || !id.UserPublicKey().Equal(userPub) || id.SingleDevice() || id.Primary() != primary {
			t.Fatalf("primary %v: read device %x user %x single %v primary %v", primary, id.PublicKey(), id.UserPublicKey(), id.SingleDevice(), id.Primary())
		}
		if len(id.Chain) != 2 || string(id.Chain[0]) != "device cert" || string(id.Chain[1]) != "user cert" {
			t.Fatalf("chain %q", id.Chain)
		}
		if primary && !id.UserKey.Equal(user) {
			t.Fatal("restored device lost the user key")
		}
	}
}

// TestPutIdentityRefusesInconsistent: a device of another user without
// its chain, a chain on a single-device identity, a user private key that
// is not the user key's.
func TestPutIdentityRefusesInconsistent(t *testing.T) {
	user, dev, other := newKey(t), newKey(t), newKey(t)
	userPub := user.Public().(ed25519.PublicKey)
	chain := [][]byte{{1}, {2}}
	for name, id := range map[string]Identity{
		"no chain":       {PrivateKey: dev, User: userPub},
		"one cert":       {PrivateKey: dev, User: userPub, Chain: chain[:1]},
		"single chained": {PrivateKey: dev, Chain: chain},
		"wrong user key": {PrivateKey: dev, User: userPub, UserKey: other, Chain: chain},
		"short user":     {PrivateKey: dev, User: userPub[:31], Chain: chain},
	} {
		st := openTestStore(t, t.TempDir())
		err := st.Update(context.Background(), func(tx *Tx) error { return tx.PutIdentity(id) })
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutIdentity: %v, want ErrInvalid", name, err)
		}
	}
}
