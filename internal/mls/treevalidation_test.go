package mls

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

type treeValidationVector struct {
	CipherSuite CipherSuite `json:"cipher_suite"`
	Tree        hexBytes    `json:"tree"`
	GroupID     hexBytes    `json:"group_id"`
	Resolutions [][]NodeIndex
	TreeHashes  []hexBytes `json:"tree_hashes"`
}

// treeSuite returns the suite of a vector, or skips the test.
func treeSuite(t *testing.T, cs CipherSuite) Suite {
	t.Helper()
	s, err := LookupSuite(cs)
	if errors.Is(err, ErrUnsupportedSuite) {
		t.Skipf("cipher suite %v not supported", cs)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVectorsTreeValidation(t *testing.T) {
	runVectors(t, "tree-validation.json", func(t *testing.T, tc *treeValidationVector) {
		s := treeSuite(t, tc.CipherSuite)
		tree, err := ParseRatchetTree(tc.Tree)
		if err != nil {
			t.Fatalf("ParseRatchetTree: %v", err)
		}
		if got := tree.Marshal(); !bytes.Equal(got, tc.Tree) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, tc.Tree)
		}
		if int(tree.Width()) != len(tc.Resolutions) || len(tc.TreeHashes) != len(tc.Resolutions) {
			t.Fatalf("width %d, vector has %d resolutions and %d tree hashes", tree.Width(), len(tc.Resolutions), len(tc.TreeHashes))
		}
		hashes := tree.TreeHashes(s)
		for x := range tc.Resolutions {
			res := tree.Resolution(NodeIndex(x))
			if !slices.Equal(res, tc.Resolutions[x]) && !(len(res) == 0 && len(tc.Resolutions[x]) == 0) {
				t.Errorf("resolution(%d) = %v, want %v", x, res, tc.Resolutions[x])
			}
			if !bytes.Equal(hashes[x], tc.TreeHashes[x]) {
				t.Errorf("tree hash of node %d = %x, want %x", x, hashes[x], tc.TreeHashes[x])
			}
			if h := tree.NodeTreeHash(s, NodeIndex(x)); !bytes.Equal(h, tc.TreeHashes[x]) {
				t.Errorf("NodeTreeHash(%d) = %x, want %x", x, h, tc.TreeHashes[x])
			}
		}
		if err := tree.VerifyParentHashes(s); err != nil {
			t.Errorf("VerifyParentHashes: %v", err)
		}
		if err := tree.VerifyLeaves(s, tc.GroupID); err != nil {
			t.Errorf("VerifyLeaves: %v", err)
		}
		if err := tree.Validate(s, tc.GroupID); err != nil {
			t.Errorf("Validate: %v", err)
		}
		// The same tree must fail when bound to another group (leaves with
		// the update or commit source sign the group id), or when any node's
		// public key changes.
		if hasGroupBoundLeaf(tree) {
			other := append(bytes.Clone(tc.GroupID), 0)
			if err := tree.Validate(s, other); !errors.Is(err, ErrInvalidTree) {
				t.Errorf("Validate with another group id: %v, want ErrInvalidTree", err)
			}
		}
		for x := range tree.Width() {
			n := tree.Node(NodeIndex(x))
			if n.Parent == nil {
				continue
			}
			bad := tree.Clone()
			k := bad.ParentNode(NodeIndex(x)).EncryptionKey
			k[len(k)-1] ^= 1
			if err := bad.Validate(s, tc.GroupID); !errors.Is(err, ErrInvalidTree) {
				t.Errorf("Validate with node %d's key changed: %v, want ErrInvalidTree", x, err)
			}
		}
	})
}

func hasGroupBoundLeaf(t *RatchetTree) bool {
	for _, i := range t.Members() {
		if t.LeafNode(i).Source != LeafNodeSourceKeyPackage {
			return true
		}
	}
	return false
}
