package mls

import (
	"bytes"
	"errors"
	"testing"
)

type treeOperationsVector struct {
	CipherSuite    CipherSuite `json:"cipher_suite"`
	TreeBefore     hexBytes    `json:"tree_before"`
	Proposal       hexBytes    `json:"proposal"`
	ProposalSender LeafIndex   `json:"proposal_sender"`
	TreeHashBefore hexBytes    `json:"tree_hash_before"`
	TreeAfter      hexBytes    `json:"tree_after"`
	TreeHashAfter  hexBytes    `json:"tree_hash_after"`
}

func TestVectorsTreeOperations(t *testing.T) {
	runVectors(t, "tree-operations.json", func(t *testing.T, tc *treeOperationsVector) {
		s := treeSuite(t, tc.CipherSuite)
		tree, err := ParseRatchetTree(tc.TreeBefore)
		if err != nil {
			t.Fatalf("ParseRatchetTree(before): %v", err)
		}
		if h := tree.TreeHash(s); !bytes.Equal(h, tc.TreeHashBefore) {
			t.Fatalf("tree hash before = %x, want %x", h, tc.TreeHashBefore)
		}
		p, err := ParseProposal(tc.Proposal)
		if err != nil {
			t.Fatalf("ParseProposal: %v", err)
		}
		if _, err := tree.ApplyProposal(p, tc.ProposalSender); err != nil {
			t.Fatalf("ApplyProposal(%v): %v", p.Type, err)
		}
		if got := tree.Marshal(); !bytes.Equal(got, tc.TreeAfter) {
			t.Errorf("tree after %v:\n got %x\nwant %x", p.Type, got, tc.TreeAfter)
		}
		if h := tree.TreeHash(s); !bytes.Equal(h, tc.TreeHashAfter) {
			t.Errorf("tree hash after = %x, want %x", h, tc.TreeHashAfter)
		}
	})
}

// treeTestLeaf makes a signed key_package leaf with fresh keys and returns
// it with its signature private key.
func treeTestLeaf(t testing.TB, s Suite, id string) (*LeafNode, []byte) {
	t.Helper()
	ln, _, sigPriv := treekemNewLeaf(t, s, id)
	return ln, sigPriv
}

func TestTreeOpsAddRemoveTruncate(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := treeTestLeaf(t, s, "a")
	tree := NewRatchetTree(a)
	for i, want := range []LeafIndex{1, 2, 3, 4} {
		ln, _ := treeTestLeaf(t, s, string(rune('b'+i)))
		got, err := tree.AddLeaf(ln)
		if err != nil || got != want {
			t.Fatalf("AddLeaf #%d = %d, %v; want %d", i, got, err, want)
		}
	}
	if n := tree.NumLeaves(); n != 8 {
		t.Fatalf("NumLeaves = %d after 5 members, want 8", n)
	}
	// Removing leaf 1 leaves a hole that the next Add fills.
	if err := tree.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if err := tree.RemoveLeaf(1); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("second RemoveLeaf(1) = %v, want ErrInvalidTree", err)
	}
	ln, _ := treeTestLeaf(t, s, "f")
	if got, _ := tree.AddLeaf(ln); got != 1 {
		t.Fatalf("AddLeaf after removal = %d, want 1", got)
	}
	// Removing leaf 4 empties the right half: the tree shrinks to 4 leaves.
	if err := tree.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if n := tree.NumLeaves(); n != 4 {
		t.Fatalf("NumLeaves = %d after truncation, want 4", n)
	}
	// The encoding round-trips and has no trailing blanks.
	back, err := ParseRatchetTree(tree.Marshal())
	if err != nil || !back.Equal(tree) {
		t.Fatalf("round trip: %v", err)
	}
	for _, i := range []LeafIndex{3, 2, 1} {
		if err := tree.RemoveLeaf(i); err != nil {
			t.Fatal(err)
		}
	}
	if n := tree.NumLeaves(); n != 1 {
		t.Fatalf("NumLeaves = %d with one member, want 1", n)
	}
	if err := tree.UpdateLeaf(5, ln); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("UpdateLeaf outside the tree = %v, want ErrInvalidTree", err)
	}
}
