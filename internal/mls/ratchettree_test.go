package mls

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// treeVectorTrees returns every serialized ratchet tree of the tree
// vectors, for fuzz seeds and decoding tests.
func treeVectorTrees(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for file, fields := range map[string][]string{
		"tree-validation.json": {"tree"},
		"treekem.json":         {"ratchet_tree"},
		"tree-operations.json": {"tree_before", "tree_after"},
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			tb.Fatal(err)
		}
		var cases []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &cases); err != nil {
			tb.Fatal(err)
		}
		for _, c := range cases {
			for _, f := range fields {
				var h hexBytes
				if err := json.Unmarshal(c[f], &h); err != nil {
					tb.Fatalf("%s %s: %v", file, f, err)
				}
				out = append(out, h)
			}
		}
	}
	return out
}

func TestRatchetTreeRoundTrip(t *testing.T) {
	for i, b := range treeVectorTrees(t) {
		tree, err := ParseRatchetTree(b)
		if err != nil {
			t.Fatalf("tree %d: %v", i, err)
		}
		if got := tree.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("tree %d: re-encoding differs", i)
		}
		if n := tree.NumLeaves(); n&(n-1) != 0 || tree.Width() != NodeWidth(n) {
			t.Fatalf("tree %d: %d leaves, width %d", i, n, tree.Width())
		}
		if !tree.Clone().Equal(tree) {
			t.Fatalf("tree %d: clone differs", i)
		}
	}
}

func TestRatchetTreeParseErrors(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := treeTestLeaf(t, s, "a")
	b, _ := treeTestLeaf(t, s, "b")
	leaf := func(ln *LeafNode) []byte { return ln.append([]byte{1, byte(NodeTypeLeaf)}) }
	parent := func(p ParentNode) []byte { return p.append([]byte{1, byte(NodeTypeParent)}) }
	blank := []byte{0}
	vec := func(parts ...[]byte) []byte {
		return AppendVector(nil, func(v []byte) []byte {
			for _, p := range parts {
				v = append(v, p...)
			}
			return v
		})
	}
	key := bytes.Repeat([]byte{7}, 32)
	for name, enc := range map[string][]byte{
		"empty":               vec(),
		"only blank":          vec(blank),
		"trailing blank":      vec(leaf(a), blank),
		"trailing blank leaf": vec(leaf(a), blank, leaf(b), blank, blank),
		"leaf at parent slot": vec(leaf(a), leaf(b)),
		"parent at leaf slot": vec(parent(ParentNode{EncryptionKey: key})),
		"bad node type":       vec([]byte{1, 3}),
		"bad presence byte":   vec([]byte{2}),
		"unsorted unmerged":   vec(leaf(a), parent(ParentNode{EncryptionKey: key, UnmergedLeaves: []LeafIndex{1, 0}}), leaf(b)),
		"duplicate unmerged":  vec(leaf(a), parent(ParentNode{EncryptionKey: key, UnmergedLeaves: []LeafIndex{1, 1}}), leaf(b)),
		"unmerged not below":  vec(leaf(a), parent(ParentNode{EncryptionKey: key, UnmergedLeaves: []LeafIndex{2}}), leaf(b)),
		"truncated":           vec(leaf(a))[:20],
		"trailing bytes":      append(vec(leaf(a)), 0),
		"unknown credential":  vec(append([]byte{1, byte(NodeTypeLeaf)}, (&LeafNode{Credential: Credential{Type: 9}}).Marshal()...)),
		"invalid leaf source": vec(append([]byte{1, byte(NodeTypeLeaf)}, (&LeafNode{Credential: NewBasicCredential(nil), Source: 4}).Marshal()...)),
		"zero leaf source":    vec(append([]byte{1, byte(NodeTypeLeaf)}, (&LeafNode{Credential: NewBasicCredential(nil)}).Marshal()...)),
	} {
		if _, err := ParseRatchetTree(enc); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: ParseRatchetTree = %v, want ErrDecode", name, err)
		}
	}
	// A tree whose last entry is a parent is padded to full width.
	tree, err := ParseRatchetTree(vec(leaf(a), blank, leaf(b), parent(ParentNode{EncryptionKey: key})))
	if err != nil {
		t.Fatal(err)
	}
	if tree.NumLeaves() != 4 || tree.Width() != 7 {
		t.Fatalf("padded tree: %d leaves, width %d; want 4, 7", tree.NumLeaves(), tree.Width())
	}
}

func TestRatchetTreeResolutionAndFilteredPath(t *testing.T) {
	// The tree of RFC 9420 §4.1.2 (figure "A Complete Tree with Five
	// Members"): leaves A B _ _ E F G _, parents T(1) X(9) Y(11) W(7) set,
	// U(3) V(5) Z(13) blank.
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	tree := &RatchetTree{nodes: newNodeArray(make([]Node, 15))}
	for _, i := range []LeafIndex{0, 1, 4, 5, 6} {
		ln, _ := treeTestLeaf(t, s, "m")
		tree.setNode(i.Node(), Node{Leaf: ln})
	}
	for _, x := range []NodeIndex{1, 9, 11, 7} {
		tree.setNode(x, Node{Parent: &ParentNode{EncryptionKey: []byte{byte(x)}, UnmergedLeaves: []LeafIndex{}}})
	}
	for leaf, want := range map[LeafIndex][]NodeIndex{0: {1, 7}, 1: {1, 7}, 4: {9, 11, 7}, 5: {9, 11, 7}, 6: {11, 7}} {
		got := tree.FilteredDirectPath(leaf)
		if !equalNodes(got, want) {
			t.Errorf("FilteredDirectPath(%d) = %v, want %v", leaf, got, want)
		}
	}
	// Unmerged leaf 6 at Y(11) joins Y's resolution.
	tree.setNode(11, Node{Parent: &ParentNode{EncryptionKey: []byte{11}, UnmergedLeaves: []LeafIndex{6}}})
	if got, want := tree.Resolution(7), []NodeIndex{7}; !equalNodes(got, want) {
		t.Errorf("Resolution(7) = %v, want %v", got, want)
	}
	if got, want := tree.Resolution(11), []NodeIndex{11, 12}; !equalNodes(got, want) {
		t.Errorf("Resolution(11) = %v, want %v", got, want)
	}
	if got, want := tree.Resolution(3), []NodeIndex{1}; !equalNodes(got, want) {
		t.Errorf("Resolution(3) = %v, want %v", got, want)
	}
	if got := tree.Resolution(5); len(got) != 0 {
		t.Errorf("Resolution(5) = %v, want empty", got)
	}
}

func equalNodes(a, b []NodeIndex) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzRatchetTree checks that any input either fails to decode with
// ErrDecode or decodes to a tree that re-encodes to the same bytes and
// that the tree algorithms handle without panicking.
func FuzzRatchetTree(f *testing.F) {
	for _, b := range treeVectorTrees(f) {
		f.Add(b)
	}
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := ParseRatchetTree(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		if got := tree.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
		if tree.Width() > 1<<7 {
			return // keep each run fast; decoding is what is fuzzed
		}
		tree.TreeHashes(s)
		_ = tree.Validate(s, []byte("group"))
		for _, i := range tree.Members() {
			tree.FilteredDirectPath(i)
		}
		tree.Resolution(Root(tree.NumLeaves()))
	})
}
