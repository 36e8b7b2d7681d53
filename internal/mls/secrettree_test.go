package mls

import (
	"bytes"
	"errors"
	"testing"
)

type secretTreeVector struct {
	CipherSuite      CipherSuite `json:"cipher_suite"`
	EncryptionSecret hexBytes    `json:"encryption_secret"`
	SenderData       struct {
		SenderDataSecret hexBytes `json:"sender_data_secret"`
		Ciphertext       hexBytes `json:"ciphertext"`
		Key              hexBytes `json:"key"`
		Nonce            hexBytes `json:"nonce"`
	} `json:"sender_data"`
	Leaves [][]struct {
		Generation       uint32   `json:"generation"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
	} `json:"leaves"`
}

// TestVectorsSecretTree checks the sender-data key and nonce, and every
// leaf's ratchets both as a receiver (Get) and as a sender (Next).
func TestVectorsSecretTree(t *testing.T) {
	runVectors(t, "secret-tree.json", func(t *testing.T, tc *secretTreeVector) {
		s := cryptoSuite(t, tc.CipherSuite)
		sd := tc.SenderData
		key, nonce, err := SenderDataKeyNonce(s, sd.SenderDataSecret, sd.Ciphertext)
		if err != nil || !bytes.Equal(key, sd.Key) || !bytes.Equal(nonce, sd.Nonce) {
			t.Errorf("sender data key/nonce = %x/%x, %v, want %x/%x", key, nonce, err, sd.Key, sd.Nonce)
		}

		n := uint32(len(tc.Leaves))
		recv := NewSecretTree(s, tc.EncryptionSecret, n)
		send := NewSecretTree(s, tc.EncryptionSecret, n)
		for i, gens := range tc.Leaves {
			leaf := LeafIndex(i)
			for _, g := range gens {
				for _, c := range []struct {
					rt         RatchetType
					key, nonce []byte
				}{
					{HandshakeRatchet, g.HandshakeKey, g.HandshakeNonce},
					{ApplicationRatchet, g.ApplicationKey, g.ApplicationNonce},
				} {
					key, nonce, err := recv.Get(leaf, c.rt, g.Generation)
					if err != nil || !bytes.Equal(key, c.key) || !bytes.Equal(nonce, c.nonce) {
						t.Errorf("leaf %d %s gen %d: Get = %x/%x, %v, want %x/%x",
							i, c.rt.label(), g.Generation, key, nonce, err, c.key, c.nonce)
					}
					for {
						gen, key, nonce, err := send.Next(leaf, c.rt)
						if err != nil {
							t.Fatalf("leaf %d: Next: %v", i, err)
						}
						if gen < g.Generation {
							continue
						}
						if gen != g.Generation || !bytes.Equal(key, c.key) || !bytes.Equal(nonce, c.nonce) {
							t.Errorf("leaf %d %s: Next = gen %d %x/%x, want gen %d %x/%x",
								i, c.rt.label(), gen, key, nonce, g.Generation, c.key, c.nonce)
						}
						break
					}
				}
			}
		}
		// Every leaf was visited, so no tree-node secret is left.
		if len(recv.nodes) != 0 || len(send.nodes) != 0 {
			t.Errorf("node secrets left after all leaves started: %d, %d", len(recv.nodes), len(send.nodes))
		}
	})
}

func secretTreeTestSuite(t testing.TB) Suite {
	t.Helper()
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecretTreeForwardSecrecy(t *testing.T) {
	s := secretTreeTestSuite(t)
	enc := bytes.Repeat([]byte{7}, 32)
	st := NewSecretTree(s, enc, 8)
	enc[0] = 0 // the tree keeps its own copy
	if _, _, err := st.Get(0, ApplicationRatchet, 0); err != nil {
		t.Fatal(err)
	}
	// Deriving leaf 0 consumed the root, node 3 and node 1 and the leaf
	// secret; their other children stay: 11, 5 and 2 (leaf 1).
	if len(st.nodes) != 3 || st.nodes[11] == nil || st.nodes[5] == nil || st.nodes[2] == nil {
		t.Fatalf("node secrets after leaf 0: %v", secretTreeNodeList(st))
	}
	r := st.ratchets[0][ApplicationRatchet]
	if r.next != 1 || len(r.keys) != 0 {
		t.Fatalf("ratchet after one Get: next %d, %d kept keys", r.next, len(r.keys))
	}
	// A used generation cannot be had again.
	if _, _, err := st.Get(0, ApplicationRatchet, 0); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("reuse of generation 0: %v", err)
	}
	// Leaf 1 uses the stored sibling secret and deletes it.
	if _, _, err := st.Get(1, HandshakeRatchet, 0); err != nil {
		t.Fatal(err)
	}
	if st.nodes[2] != nil || len(st.nodes) != 2 {
		t.Fatalf("node secrets after leaf 1: %v", secretTreeNodeList(st))
	}
	if _, _, err := st.Get(8, HandshakeRatchet, 0); !errors.Is(err, ErrLeafOutOfRange) {
		t.Fatalf("leaf 8 of 8: %v", err)
	}

	// The sender side: generations count up and never repeat.
	snd := NewSecretTree(s, bytes.Repeat([]byte{7}, 32), 8)
	var last []byte
	for want := range uint32(3) {
		g, key, _, err := snd.Next(3, HandshakeRatchet)
		if err != nil || g != want || bytes.Equal(key, last) {
			t.Fatalf("Next = %d, %v; want generation %d and a new key", g, err, want)
		}
		last = key
	}
	if r := snd.ratchets[3][HandshakeRatchet]; len(r.keys) != 0 {
		t.Fatalf("sender kept %d keys", len(r.keys))
	}

	st.Clear()
	if len(st.nodes) != 0 || len(st.ratchets) != 0 {
		t.Fatal("Clear left secrets")
	}
	if _, _, err := st.Get(0, HandshakeRatchet, 1); err == nil {
		t.Fatal("cleared tree still hands out keys")
	}
}

func secretTreeNodeList(st *SecretTree) []NodeIndex {
	var xs []NodeIndex
	for x := range st.nodes {
		xs = append(xs, x)
	}
	return xs
}

func TestSecretTreeOutOfOrder(t *testing.T) {
	s := secretTreeTestSuite(t)
	enc := bytes.Repeat([]byte{9}, 32)
	snd := NewSecretTree(s, enc, 2)
	var keys [][]byte
	for range 14 {
		_, k, _, err := snd.Next(1, ApplicationRatchet)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}

	st := NewSecretTree(s, enc, 2)
	st.OutOfOrderTolerance = 3
	st.MaxForwardDistance = 5
	get := func(g uint32) error {
		k, _, err := st.Get(1, ApplicationRatchet, g)
		if err == nil && !bytes.Equal(k, keys[g]) {
			t.Fatalf("generation %d: wrong key", g)
		}
		return err
	}
	if err := get(5); err != nil {
		t.Fatal(err)
	}
	// Skipped 0..4; only the newest three (2, 3, 4) are kept.
	if n := len(st.ratchets[1][ApplicationRatchet].keys); n != 3 {
		t.Fatalf("%d kept keys, want 3", n)
	}
	if err := get(3); err != nil {
		t.Fatalf("late generation 3: %v", err)
	}
	if err := get(3); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("generation 3 twice: %v", err)
	}
	if err := get(1); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("generation 1 (outside the window): %v", err)
	}
	// Too far ahead: rejected, ratchet unchanged.
	if err := get(12); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("generation 12: %v", err)
	}
	if err := get(6); err != nil {
		t.Fatalf("generation 6 after a rejected jump: %v", err)
	}
	// Moving forward again evicts the oldest kept key (2) when over the
	// tolerance: kept are 2, 4 and then 7, 8 are added.
	if err := get(9); err != nil {
		t.Fatal(err)
	}
	if err := get(2); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("generation 2 after eviction: %v", err)
	}
	for _, g := range []uint32{4, 7, 8} {
		if err := get(g); err != nil {
			t.Fatalf("kept generation %d: %v", g, err)
		}
	}
}

func TestSecretTreeMarshal(t *testing.T) {
	for _, id := range SupportedSuites() {
		s, _ := LookupSuite(id)
		enc := bytes.Repeat([]byte{3}, s.HashSize())
		st := NewSecretTree(s, enc, 4)
		st.OutOfOrderTolerance = 10
		if _, _, err := st.Get(2, ApplicationRatchet, 4); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.Next(0, HandshakeRatchet); err != nil {
			t.Fatal(err)
		}
		b := st.Marshal()
		back, err := ParseSecretTree(b)
		if err != nil {
			t.Fatalf("suite %v: ParseSecretTree: %v", id, err)
		}
		if !bytes.Equal(back.Marshal(), b) {
			t.Fatalf("suite %v: re-encoding differs", id)
		}
		if back.OutOfOrderTolerance != 10 || back.MaxForwardDistance != DefaultMaxForwardDistance || back.NumLeaves() != 4 {
			t.Fatalf("suite %v: settings not restored", id)
		}
		// Both copies go on identically: a kept key, the next sender key,
		// and a leaf not yet started.
		for _, f := range []func(*SecretTree) ([]byte, error){
			func(st *SecretTree) ([]byte, error) { k, _, err := st.Get(2, ApplicationRatchet, 1); return k, err },
			func(st *SecretTree) ([]byte, error) { _, k, _, err := st.Next(0, HandshakeRatchet); return k, err },
			func(st *SecretTree) ([]byte, error) { k, _, err := st.Get(3, HandshakeRatchet, 2); return k, err },
		} {
			k1, err1 := f(st)
			k2, err2 := f(back)
			if err1 != nil || err2 != nil || !bytes.Equal(k1, k2) {
				t.Fatalf("suite %v: restored tree differs: %v, %v", id, err1, err2)
			}
		}
		var viaBinary SecretTree
		if err := viaBinary.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		for i := range len(b) {
			if _, err := ParseSecretTree(b[:i]); err == nil {
				t.Fatalf("suite %v: truncated state (%d of %d bytes) accepted", id, i, len(b))
			}
		}
	}
}

func TestSecretTreeClone(t *testing.T) {
	s := secretTreeTestSuite(t)
	st := NewSecretTree(s, bytes.Repeat([]byte{8}, 32), 4)
	if _, _, err := st.Get(1, HandshakeRatchet, 2); err != nil {
		t.Fatal(err)
	}
	c := st.Clone()
	k1, _, err := st.Get(1, HandshakeRatchet, 0)
	if err != nil {
		t.Fatal(err)
	}
	st.Clear() // zeroes the original's secrets in place
	k2, _, err := c.Get(1, HandshakeRatchet, 0)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("clone lost its kept key: %v", err)
	}
	if _, _, err := c.Get(3, ApplicationRatchet, 0); err != nil {
		t.Fatalf("clone cannot start another leaf: %v", err)
	}
	ref := NewSecretTree(s, bytes.Repeat([]byte{8}, 32), 4)
	want, _, _ := ref.Get(3, ApplicationRatchet, 0)
	got, _, _ := NewSecretTree(s, bytes.Repeat([]byte{8}, 32), 4).Clone().Get(3, ApplicationRatchet, 0)
	if !bytes.Equal(got, want) {
		t.Fatal("clone of a fresh tree derives other keys")
	}
}

// TestSecretTreeLeafUndo checks that restoring a leaf snapshot puts the tree
// back exactly as it was, whether the leaf's ratchets had started or not,
// and zeroes the secrets it drops.
func TestSecretTreeLeafUndo(t *testing.T) {
	s := secretTreeTestSuite(t)
	st := NewSecretTree(s, bytes.Repeat([]byte{8}, 32), 8)
	if _, _, err := st.Get(1, ApplicationRatchet, 3); err != nil {
		t.Fatal(err)
	}
	for _, leaf := range []LeafIndex{1, 6} { // started, not started
		before := st.Marshal()
		want, _, err := st.Clone().Get(leaf, ApplicationRatchet, 5)
		if err != nil {
			t.Fatal(err)
		}
		u := st.snapshotLeaf(leaf)
		if _, _, err := st.Get(leaf, ApplicationRatchet, 5); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Get(leaf, HandshakeRatchet, 0); err != nil {
			t.Fatal(err)
		}
		dropped := st.ratchets[leaf][ApplicationRatchet].secret
		u.restore()
		if !bytes.Equal(st.Marshal(), before) {
			t.Fatalf("leaf %d: tree differs after restore", leaf)
		}
		if !bytes.Equal(dropped, make([]byte, len(dropped))) {
			t.Fatalf("leaf %d: dropped ratchet secret not zeroed", leaf)
		}
		got, _, err := st.Get(leaf, ApplicationRatchet, 5)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("leaf %d: generation 5 after restore: %v", leaf, err)
		}
		u.restore() // a second restore does nothing
		if _, _, err := st.Get(leaf, ApplicationRatchet, 5); !errors.Is(err, ErrGenerationConsumed) {
			t.Fatalf("leaf %d: second restore brought generation 5 back: %v", leaf, err)
		}
	}
	// A nil tree and a leaf out of range give undos that do nothing.
	var none *SecretTree
	none.snapshotLeaf(0).restore()
	if none.Clone() != nil {
		t.Fatal("clone of a nil tree is not nil")
	}
	before := st.Marshal()
	st.snapshotLeaf(8).restore()
	if !bytes.Equal(st.Marshal(), before) {
		t.Fatal("undo of a leaf out of range changed the tree")
	}
}

func TestSenderDataShortCiphertext(t *testing.T) {
	s := secretTreeTestSuite(t)
	secret := bytes.Repeat([]byte{1}, 32)
	k1, n1, err := SenderDataKeyNonce(s, secret, []byte{1, 2, 3})
	if err != nil || len(k1) != 16 || len(n1) != 12 {
		t.Fatalf("short ciphertext: %d/%d, %v", len(k1), len(n1), err)
	}
	long := bytes.Repeat([]byte{5}, 40)
	k2, _, _ := SenderDataKeyNonce(s, secret, long)
	long[39] = 6 // beyond the Nh-byte sample
	k3, _, _ := SenderDataKeyNonce(s, secret, long)
	if !bytes.Equal(k2, k3) || bytes.Equal(k1, k2) {
		t.Fatal("sender data key does not depend on exactly the first Nh bytes")
	}
}

// FuzzSecretTree checks that restoring a stored secret tree never panics and
// that an accepted state re-encodes to the same bytes.
func FuzzSecretTree(f *testing.F) {
	s := secretTreeTestSuite(f)
	st := NewSecretTree(s, bytes.Repeat([]byte{3}, 32), 4)
	f.Add(st.Marshal())
	st.Get(1, ApplicationRatchet, 3)
	st.Next(2, HandshakeRatchet)
	f.Add(st.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseSecretTree(b)
		if err != nil {
			return
		}
		if got := st.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
		// Using a restored tree must not panic either.
		for l := range min(st.NumLeaves(), 4) {
			st.Get(LeafIndex(l), ApplicationRatchet, 2)
			st.Next(LeafIndex(l), HandshakeRatchet)
		}
	})
}
