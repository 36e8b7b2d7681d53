package mls

import (
	"bytes"
	"testing"
)

func allZero(bs ...[]byte) bool {
	for _, b := range bs {
		if len(b) == 0 || !bytes.Equal(b, make([]byte, len(b))) {
			return false
		}
	}
	return true
}

// pendingSecrets returns slices of the secrets a pending commit's state
// holds: its epoch secrets and its path private keys.
func pendingSecrets(t *testing.T, g *Group) [][]byte {
	t.Helper()
	st := g.pending.state
	k := &st.keys
	out := [][]byte{k.initSecret, k.exporterSecret, k.membershipKey, k.confirmationKey, st.priv.EncryptionKey}
	for _, v := range st.priv.Path {
		out = append(out, v)
	}
	return out
}

func TestDiscardedPendingCommitIsWiped(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b := sg.members[0], sg.members[1]
	if _, err := a.g.SelfUpdate(nil); err != nil {
		t.Fatal(err)
	}
	secrets := pendingSecrets(t, a.g)
	if allZero(secrets...) {
		t.Fatal("secrets are zero before the discard")
	}
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	for i, s := range secrets {
		if !allZero(s) {
			t.Fatalf("secret %d of the discarded commit was kept", i)
		}
	}
	sg.agree()

	// A commit of another member wins the epoch: the pending one is wiped.
	if _, err := a.g.SelfUpdate(nil); err != nil {
		t.Fatal(err)
	}
	secrets = pendingSecrets(t, a.g)
	res, err := b.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(b, res)
	for i, s := range secrets {
		if !allZero(s) {
			t.Fatalf("secret %d of the losing commit was kept", i)
		}
	}
	sg.agree()
}

func TestRefusedCommitWipeSparesLiveState(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	res, err := a.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	// b refuses the commit after it decrypted the path: what was derived
	// for it is wiped, and nothing b still uses.
	b.g.SetPolicy(Policy{Commits: &inspector{refuse: true}})
	refusedIdentically(t, b.g, res.Message, ErrCommitRefused)
	b.g.SetPolicy(Policy{})
	sg.commitFrom(a, res)
	sg.agree()
	sg.talk("after a refusal")
}

func TestUndoSnapshotDiscardZeroes(t *testing.T) {
	s, _ := LookupSuite(scSuite)
	st := NewSecretTree(s, bytes.Repeat([]byte{7}, s.HashSize()), 4)
	u := st.snapshotLeaf(1)
	if _, _, err := st.Get(1, ApplicationRatchet, 0); err != nil {
		t.Fatal(err)
	}
	var saved [][]byte
	for _, v := range u.nodes {
		if v != nil {
			saved = append(saved, v)
		}
	}
	if len(saved) == 0 {
		t.Fatal("the snapshot saved nothing")
	}
	u.discard()
	if !allZero(saved...) {
		t.Fatal("the snapshot kept secrets after discard")
	}
	u.restore() // does nothing after discard
}

func TestReplacedPathKeysAreWiped(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 3, false)
	a, b := sg.members[0], sg.members[1]
	res, err := a.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res) // b now holds path keys from a's path
	old := b.g.priv
	var keys [][]byte
	for _, v := range old.Path {
		keys = append(keys, v)
	}
	keys = append(keys, old.EncryptionKey)
	if len(keys) < 2 || allZero(keys...) {
		t.Fatalf("b holds %d keys", len(keys))
	}
	res, err = b.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(b, res)
	for i, k := range keys {
		if !allZero(k) {
			t.Fatalf("replaced key %d was kept", i)
		}
	}
	sg.agree()
	sg.talk("after the wipe")
}
