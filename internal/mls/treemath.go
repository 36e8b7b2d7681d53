package mls

// Array-based binary tree arithmetic (RFC 9420 §4.2 and Appendix C). Leaves
// sit at even node indices, parents at odd ones; the tree of n leaves (n a
// power of two in RFC 9420, since trees are always full) has 2n-1 nodes.
//
// Functions that have no answer for some input (the children of a leaf, the
// parent or sibling of the root) return the input node itself; callers test
// IsLeaf or compare with Root first.

import "math/bits"

// LeafIndex numbers the leaves of a ratchet tree from 0.
type LeafIndex uint32

// NodeIndex numbers all nodes of a ratchet tree in array order.
type NodeIndex uint32

// Node returns the node index of leaf i (2i).
func (i LeafIndex) Node() NodeIndex { return NodeIndex(2 * i) }

// Leaf returns the leaf index of node x and whether x is a leaf.
func (x NodeIndex) Leaf() (LeafIndex, bool) { return LeafIndex(x / 2), x%2 == 0 }

// IsLeaf reports whether x is a leaf node.
func IsLeaf(x NodeIndex) bool { return x%2 == 0 }

// NodeWidth returns the number of nodes of a tree with nLeaves leaves.
func NodeWidth(nLeaves uint32) uint32 {
	if nLeaves == 0 {
		return 0
	}
	return 2*(nLeaves-1) + 1
}

// Root returns the root of a tree with nLeaves leaves.
func Root(nLeaves uint32) NodeIndex {
	w := NodeWidth(nLeaves)
	if w == 0 {
		return 0
	}
	return NodeIndex(1<<(bits.Len32(w)-1) - 1)
}

// Level returns the level of x in the tree: 0 for leaves, and one more than
// its children for a parent (the number of trailing one bits).
func Level(x NodeIndex) uint {
	return uint(bits.TrailingZeros32(^uint32(x)))
}

// Left returns the left child of a parent node.
func Left(x NodeIndex) NodeIndex {
	k := Level(x)
	if k == 0 {
		return x
	}
	return x ^ (1 << (k - 1))
}

// Right returns the right child of a parent node.
func Right(x NodeIndex) NodeIndex {
	k := Level(x)
	if k == 0 {
		return x
	}
	return x ^ (3 << (k - 1))
}

func parentStep(x NodeIndex) NodeIndex {
	k := Level(x)
	b := (x >> (k + 1)) & 1
	return (x | (1 << k)) ^ (b << (k + 1))
}

// Parent returns the parent of x in a tree of nLeaves leaves.
func Parent(x NodeIndex, nLeaves uint32) NodeIndex {
	if x == Root(nLeaves) {
		return x
	}
	return parentStep(x)
}

// Sibling returns the other child of x's parent.
func Sibling(x NodeIndex, nLeaves uint32) NodeIndex {
	if x == Root(nLeaves) {
		return x
	}
	p := parentStep(x)
	if x < p {
		return Right(p)
	}
	return Left(p)
}

// DirectPath returns the parents of x from its parent up to the root
// (empty for the root, and for a node outside the tree).
func DirectPath(x NodeIndex, nLeaves uint32) []NodeIndex {
	if uint32(x) >= NodeWidth(nLeaves) {
		return nil
	}
	r := Root(nLeaves)
	var d []NodeIndex
	for x != r {
		x = parentStep(x)
		d = append(d, x)
	}
	return d
}

// Copath returns the siblings of x and of each node of its direct path
// except the root.
func Copath(x NodeIndex, nLeaves uint32) []NodeIndex {
	if uint32(x) >= NodeWidth(nLeaves) {
		return nil
	}
	r := Root(nLeaves)
	var c []NodeIndex
	for x != r {
		c = append(c, Sibling(x, nLeaves))
		x = parentStep(x)
	}
	return c
}
