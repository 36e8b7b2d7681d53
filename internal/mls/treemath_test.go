package mls

import (
	"slices"
	"testing"
)

type treeMathVector struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    NodeIndex `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

// TestVectorsTreeMath checks every relation of every node of the vector trees.
func TestVectorsTreeMath(t *testing.T) {
	runVectors(t, "tree-math.json", func(t *testing.T, tc *treeMathVector) {
		n := tc.NLeaves
		if got := NodeWidth(n); got != tc.NNodes {
			t.Fatalf("NodeWidth(%d) = %d, want %d", n, got, tc.NNodes)
		}
		root := Root(n)
		if root != tc.Root {
			t.Fatalf("Root(%d) = %d, want %d", n, root, tc.Root)
		}
		if len(tc.Left) != int(tc.NNodes) || len(tc.Right) != int(tc.NNodes) ||
			len(tc.Parent) != int(tc.NNodes) || len(tc.Sibling) != int(tc.NNodes) {
			t.Fatalf("vector arrays do not have %d entries", tc.NNodes)
		}
		for i := range tc.NNodes {
			x := NodeIndex(i)
			check := func(name string, want *uint32, got NodeIndex, exists bool) {
				t.Helper()
				switch {
				case want == nil && exists:
					t.Errorf("%s(%d) = %d, want none", name, x, got)
				case want != nil && !exists:
					t.Errorf("%s(%d) = none, want %d", name, x, *want)
				case want != nil && NodeIndex(*want) != got:
					t.Errorf("%s(%d) = %d, want %d", name, x, got, *want)
				}
			}
			check("Left", tc.Left[i], Left(x), !IsLeaf(x))
			check("Right", tc.Right[i], Right(x), !IsLeaf(x))
			check("Parent", tc.Parent[i], Parent(x, n), x != root)
			check("Sibling", tc.Sibling[i], Sibling(x, n), x != root)
		}
	})
}

func TestTreeMathPaths(t *testing.T) {
	// A tree of 8 leaves: leaf 0 (node 0) climbs 1, 3, 7; its copath is
	// 2, 5, 11.
	if got := DirectPath(0, 8); !slices.Equal(got, []NodeIndex{1, 3, 7}) {
		t.Errorf("DirectPath(0, 8) = %v", got)
	}
	if got := Copath(0, 8); !slices.Equal(got, []NodeIndex{2, 5, 11}) {
		t.Errorf("Copath(0, 8) = %v", got)
	}
	if got := DirectPath(12, 8); !slices.Equal(got, []NodeIndex{13, 11, 7}) {
		t.Errorf("DirectPath(12, 8) = %v", got)
	}
	if got := Copath(12, 8); !slices.Equal(got, []NodeIndex{14, 9, 3}) {
		t.Errorf("Copath(12, 8) = %v", got)
	}
	if got := DirectPath(7, 8); len(got) != 0 {
		t.Errorf("DirectPath(root) = %v, want empty", got)
	}
	if got := DirectPath(15, 8); got != nil {
		t.Errorf("DirectPath outside the tree = %v, want nil", got)
	}
	if got := DirectPath(0, 1); len(got) != 0 {
		t.Errorf("DirectPath in a one-leaf tree = %v, want empty", got)
	}
	for l := range LeafIndex(16) {
		got, ok := l.Node().Leaf()
		if !ok || got != l {
			t.Errorf("leaf %d -> node %d -> leaf %d, %v", l, l.Node(), got, ok)
		}
	}
	if _, ok := NodeIndex(5).Leaf(); ok {
		t.Error("node 5 reported as a leaf")
	}
	for x, want := range map[NodeIndex]uint{0: 0, 1: 1, 3: 2, 5: 1, 7: 3, 11: 2, 15: 4} {
		if got := Level(x); got != want {
			t.Errorf("Level(%d) = %d, want %d", x, got, want)
		}
	}
}
