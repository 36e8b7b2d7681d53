package mls

import (
	"bytes"
	"errors"
	"testing"
)

type treeKEMVector struct {
	CipherSuite             CipherSuite `json:"cipher_suite"`
	GroupID                 hexBytes    `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	ConfirmedTranscriptHash hexBytes    `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes    `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          LeafIndex `json:"index"`
		EncryptionPriv hexBytes  `json:"encryption_priv"`
		SignaturePriv  hexBytes  `json:"signature_priv"`
		PathSecrets    []struct {
			Node       NodeIndex `json:"node"`
			PathSecret hexBytes  `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        LeafIndex  `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

// treekemContext returns the encoded provisional GroupContext of a vector
// for a tree hash.
func treekemContext(tc *treeKEMVector, treeHash []byte) []byte {
	gc := GroupContext{
		Version:                 MLS10,
		CipherSuite:             tc.CipherSuite,
		GroupID:                 tc.GroupID,
		Epoch:                   tc.Epoch,
		TreeHash:                treeHash,
		ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
		Extensions:              []Extension{},
	}
	return gc.Marshal()
}

func TestVectorsTreeKEM(t *testing.T) {
	runVectors(t, "treekem.json", func(t *testing.T, tc *treeKEMVector) {
		s := treeSuite(t, tc.CipherSuite)
		tree, err := ParseRatchetTree(tc.RatchetTree)
		if err != nil {
			t.Fatalf("ParseRatchetTree: %v", err)
		}
		if err := tree.Validate(s, tc.GroupID); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		// Import each member's keys; every path secret must give the
		// public key the tree holds.
		keys := map[LeafIndex]*TreePrivateKeys{}
		sigPrivs := map[LeafIndex][]byte{}
		for _, lp := range tc.LeavesPrivate {
			k := NewTreePrivateKeys(lp.Index, lp.EncryptionPriv)
			for _, ps := range lp.PathSecrets {
				if err := k.SetPathSecret(s, tree, ps.Node, ps.PathSecret); err != nil {
					t.Fatalf("leaf %d: SetPathSecret(%d): %v", lp.Index, ps.Node, err)
				}
			}
			keys[lp.Index] = k
			sigPrivs[lp.Index] = lp.SignaturePriv
		}
		for _, i := range tree.Members() {
			if keys[i] == nil {
				t.Fatalf("no private keys for member %d", i)
			}
		}

		for _, up := range tc.UpdatePaths {
			path, err := ParseUpdatePath(up.UpdatePath)
			if err != nil {
				t.Fatalf("ParseUpdatePath: %v", err)
			}
			after := tree.Clone()
			if err := after.MergeUpdatePath(s, up.Sender, path, tc.GroupID); err != nil {
				t.Fatalf("sender %d: MergeUpdatePath: %v", up.Sender, err)
			}
			if h := after.TreeHash(s); !bytes.Equal(h, up.TreeHashAfter) {
				t.Fatalf("sender %d: tree hash after = %x, want %x", up.Sender, h, up.TreeHashAfter)
			}
			if err := after.VerifyParentHashes(s); err != nil {
				t.Fatalf("sender %d: merged tree: %v", up.Sender, err)
			}
			ctx := treekemContext(tc, up.TreeHashAfter)
			for _, to := range tree.Members() {
				if to == up.Sender {
					continue
				}
				k := keys[to].Clone()
				commit, ps, err := k.decryptPath(s, after, up.Sender, path, ctx, nil)
				if err != nil {
					t.Fatalf("sender %d, receiver %d: %v", up.Sender, to, err)
				}
				if !bytes.Equal(commit, up.CommitSecret) {
					t.Errorf("sender %d, receiver %d: commit secret %x, want %x", up.Sender, to, commit, up.CommitSecret)
				}
				if !bytes.Equal(ps, up.PathSecrets[to]) {
					t.Errorf("sender %d, receiver %d: path secret %x, want %x", up.Sender, to, ps, up.PathSecrets[to])
				}
			}
			// A path bound to another group context must not decrypt.
			if len(tree.Members()) > 1 {
				to := tree.Members()[0]
				if to == up.Sender {
					to = tree.Members()[1]
				}
				bad := treekemContext(tc, append(bytes.Clone(up.TreeHashAfter), 0))
				if _, err := keys[to].Clone().DecryptPath(s, after, up.Sender, path, bad, nil); !errors.Is(err, ErrDecrypt) {
					t.Errorf("decrypt with wrong context: %v, want ErrDecrypt", err)
				}
			}

			// A fresh path from the same sender: every member agrees on its
			// commit secret.
			treekemRoundTrip(t, s, tree, keys, up.Sender, sigPrivs[up.Sender], tc)
		}
	})
}

// treekemRoundTrip generates an UpdatePath from `from` in a copy of tree and
// checks that every other member decrypts the same commit secret.
func treekemRoundTrip(t *testing.T, s Suite, tree *RatchetTree, keys map[LeafIndex]*TreePrivateKeys, from LeafIndex, sigPriv []byte, tc *treeKEMVector) {
	t.Helper()
	sent := tree.Clone()
	pu, err := sent.GeneratePath(s, from, tree.LeafNode(from), sigPriv, tc.GroupID)
	if err != nil {
		t.Fatalf("GeneratePath(%d): %v", from, err)
	}
	if err := sent.Validate(s, tc.GroupID); err != nil {
		t.Fatalf("tree after GeneratePath(%d): %v", from, err)
	}
	ctx := treekemContext(tc, sent.TreeHash(s))
	path, err := sent.EncryptPath(s, pu, ctx, nil)
	if err != nil {
		t.Fatalf("EncryptPath: %v", err)
	}
	// Through the wire encoding, as a receiver sees it.
	path, err = ParseUpdatePath(path.Marshal())
	if err != nil {
		t.Fatalf("ParseUpdatePath of own path: %v", err)
	}
	recv := tree.Clone()
	if err := recv.MergeUpdatePath(s, from, path, tc.GroupID); err != nil {
		t.Fatalf("MergeUpdatePath of own path: %v", err)
	}
	if !recv.Equal(sent) {
		t.Fatalf("receiver's tree differs from the sender's")
	}
	for _, to := range tree.Members() {
		if to == from {
			continue
		}
		k := keys[to].Clone()
		commit, err := k.DecryptPath(s, recv, from, path, ctx, nil)
		if err != nil {
			t.Fatalf("receiver %d of a fresh path from %d: %v", to, from, err)
		}
		if !bytes.Equal(commit, pu.CommitSecret) {
			t.Fatalf("receiver %d: commit secret %x, sender has %x", to, commit, pu.CommitSecret)
		}
		// The receiver now holds keys for every non-blank node above it
		// on the sender's path; the sender's keys agree with them.
		for x, priv := range k.Path {
			if sp, ok := pu.Keys.Path[x]; ok && !bytes.Equal(sp, priv) {
				t.Fatalf("receiver %d and sender disagree on the key of node %d", to, x)
			}
		}
	}
	pu.Wipe()
}
