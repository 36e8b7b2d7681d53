package mls

import (
	"bytes"
	"fmt"
	"slices"
)

// This file is the ratchet tree of RFC 9420 §4 and §7: its nodes, its wire
// form in the ratchet_tree extension (§12.4.3.3), resolutions and filtered
// direct paths. Tree hashes are in treehash.go, parent hashes in
// parenthash.go, validation in treevalidation.go, the proposal operations in
// treeops.go and TreeKEM in treekem.go.

// NodeType distinguishes leaf and parent nodes on the wire (RFC 9420 §7.8).
type NodeType uint8

// The node types of RFC 9420 §7.8.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ParentNode is the public state of an intermediate node (RFC 9420 §7.1).
// UnmergedLeaves is sorted in increasing order.
type ParentNode struct {
	EncryptionKey  []byte
	ParentHash     []byte
	UnmergedLeaves []LeafIndex
}

func (p *ParentNode) append(b []byte) []byte {
	b = AppendOpaque(b, p.EncryptionKey)
	b = AppendOpaque(b, p.ParentHash)
	return AppendVector(b, func(b []byte) []byte {
		for _, l := range p.UnmergedLeaves {
			b = AppendUint32(b, uint32(l))
		}
		return b
	})
}

func (r *Reader) readParentNode() ParentNode {
	p := ParentNode{EncryptionKey: r.Opaque(), ParentHash: r.Opaque(), UnmergedLeaves: []LeafIndex{}}
	r.Vector(func(r *Reader) { p.UnmergedLeaves = append(p.UnmergedLeaves, LeafIndex(r.Uint32())) })
	return p
}

// Node is one node of a ratchet tree: a leaf, a parent, or blank (both nil).
type Node struct {
	Leaf   *LeafNode
	Parent *ParentNode
}

// Blank reports whether the node holds no value.
func (n *Node) Blank() bool { return n == nil || (n.Leaf == nil && n.Parent == nil) }

// EncryptionKey returns the node's HPKE public key, or nil if it is blank.
func (n *Node) EncryptionKey() []byte {
	switch {
	case n == nil:
		return nil
	case n.Leaf != nil:
		return n.Leaf.EncryptionKey
	case n.Parent != nil:
		return n.Parent.EncryptionKey
	}
	return nil
}

// RatchetTree is the public state of a group's ratchet tree (RFC 9420 §4):
// a perfect binary tree stored as an array, leaf i at node 2i. The number of
// leaves is always a power of two; blank nodes are stored as zero Nodes.
//
// A RatchetTree is not safe for concurrent use.
type RatchetTree struct {
	nodes nodeArray // the nodes and their cached values (nodearray.go)
	// hashSuite is the suite of the cached tree hashes, if hashed.
	hashSuite CipherSuite
	hashed    bool
	index     *keyIndex // keys (treeindex.go)
	// blanksMarked is set once the wholly blank subtrees carry their
	// empty resolution in the cache (treecache.go).
	blanksMarked bool
}

// NewRatchetTree returns a one-leaf tree holding leaf, as made by the
// creator of a group.
func NewRatchetTree(leaf *LeafNode) *RatchetTree {
	return &RatchetTree{nodes: newNodeArray([]Node{{Leaf: leaf}})}
}

// NumLeaves returns the number of leaves, including blank ones.
func (t *RatchetTree) NumLeaves() uint32 { return uint32(t.nodes.len()+1) / 2 }

// Width returns the number of nodes, including blank ones.
func (t *RatchetTree) Width() uint32 { return uint32(t.nodes.len()) }

// Node returns the node at x, or nil if x is outside the tree. The result
// aliases the tree.
func (t *RatchetTree) Node(x NodeIndex) *Node {
	if uint64(x) >= uint64(t.nodes.len()) {
		return nil
	}
	return t.nodes.at(x)
}

// LeafNode returns the LeafNode at leaf i, or nil if it is blank or outside
// the tree. The result aliases the tree.
func (t *RatchetTree) LeafNode(i LeafIndex) *LeafNode {
	n := t.Node(i.Node())
	if n == nil {
		return nil
	}
	return n.Leaf
}

// ParentNode returns the ParentNode at x, or nil if it is blank, a leaf or
// outside the tree. The result aliases the tree.
func (t *RatchetTree) ParentNode(x NodeIndex) *ParentNode {
	n := t.Node(x)
	if n == nil {
		return nil
	}
	return n.Parent
}

// Members returns the indices of the non-blank leaves, in order.
func (t *RatchetTree) Members() []LeafIndex {
	var out []LeafIndex
	for i := uint32(0); i < t.NumLeaves(); i++ {
		if t.nodes.at(NodeIndex(2*i)).Leaf != nil {
			out = append(out, LeafIndex(i))
		}
	}
	return out
}

// Clone returns a copy of t that changes independently of it, in
// O(N/64): the node values and the node array's chunks are shared until
// one of the two trees changes them (treecache.go, nodearray.go). The tree
// never writes into a LeafNode or ParentNode it holds, and neither may its
// callers.
func (t *RatchetTree) Clone() *RatchetTree {
	return &RatchetTree{nodes: t.nodes.clone(), hashSuite: t.hashSuite, hashed: t.hashed, index: t.index.fork(), blanksMarked: t.blanksMarked}
}

// Equal reports whether t and o have the same encoding.
func (t *RatchetTree) Equal(o *RatchetTree) bool {
	return bytes.Equal(t.Marshal(), o.Marshal())
}

// append appends the ratchet_tree extension encoding of t: optional<Node>
// ratchet_tree<V>, without the blank nodes after the last non-blank one.
func (t *RatchetTree) append(b []byte) []byte {
	last := t.nodes.len() - 1
	for last >= 0 && t.nodes.at(NodeIndex(last)).Blank() {
		last--
	}
	return AppendVector(b, func(b []byte) []byte {
		for i := 0; i <= last; i++ {
			n := t.nodes.at(NodeIndex(i))
			b = AppendOptional(b, !n.Blank(), func(b []byte) []byte {
				if n.Leaf != nil {
					b = AppendUint8(b, uint8(NodeTypeLeaf))
					return n.Leaf.append(b)
				}
				b = AppendUint8(b, uint8(NodeTypeParent))
				return n.Parent.append(b)
			})
		}
		return b
	})
}

// Marshal returns the ratchet_tree extension encoding of t (RFC 9420
// §12.4.3.3).
func (t *RatchetTree) Marshal() []byte { return t.append(nil) }

// readRatchetTree reads a ratchet_tree extension body. It checks the
// structure: the last entry is not blank, leaves sit at even and parents
// at odd positions, and the array is padded with blanks to the full width
// of a perfect tree.
func (r *Reader) readRatchetTree() *RatchetTree {
	var nodes []Node
	r.Vector(func(r *Reader) {
		pos := len(nodes)
		var n Node
		r.Optional(func(r *Reader) {
			switch typ := NodeType(r.Uint8()); {
			case r.Err() != nil:
			case typ == NodeTypeLeaf:
				if pos%2 != 0 {
					r.Fail("ratchet tree: leaf node at parent position %d", pos)
					return
				}
				ln := r.readLeafNode()
				n.Leaf = &ln
			case typ == NodeTypeParent:
				if pos%2 != 1 {
					r.Fail("ratchet tree: parent node at leaf position %d", pos)
					return
				}
				p := r.readParentNode()
				n.Parent = &p
			default:
				r.Fail("ratchet tree: invalid node type %d", uint8(typ))
			}
		})
		if len(nodes) >= maxTreeNodes {
			r.Fail("ratchet tree: more than %d nodes", maxTreeNodes)
			return
		}
		nodes = append(nodes, n)
	})
	if r.Err() != nil {
		return nil
	}
	if len(nodes) == 0 {
		r.Fail("ratchet tree: no nodes")
		return nil
	}
	if nodes[len(nodes)-1].Blank() {
		r.Fail("ratchet tree: last node is blank")
		return nil
	}
	// Pad to the width of the smallest perfect tree holding every entry.
	leaves := uint32(1)
	for NodeWidth(leaves) < uint32(len(nodes)) {
		leaves *= 2
	}
	for uint32(len(nodes)) < NodeWidth(leaves) {
		nodes = append(nodes, Node{})
	}
	t := &RatchetTree{nodes: newNodeArray(nodes)}
	for x := range t.nodes.len() {
		if p := t.nodes.at(NodeIndex(x)).Parent; p != nil {
			if err := t.checkUnmergedShape(NodeIndex(x), p); err != nil {
				r.Fail("%v", err)
				return nil
			}
		}
	}
	return t
}

// maxTreeNodes bounds the width of a decoded tree (2^20 leaves).
const maxTreeNodes = 1<<21 - 1

// checkUnmergedShape checks that p's unmerged leaves are sorted, distinct and
// below x.
func (t *RatchetTree) checkUnmergedShape(x NodeIndex, p *ParentNode) error {
	lo, hi := treeSubtreeLeaves(x)
	for i, l := range p.UnmergedLeaves {
		if i > 0 && l <= p.UnmergedLeaves[i-1] {
			return fmt.Errorf("ratchet tree: unmerged leaves of node %d not sorted", x)
		}
		if l < lo || l > hi {
			return fmt.Errorf("ratchet tree: unmerged leaf %d is not below node %d", l, x)
		}
	}
	return nil
}

// ParseRatchetTree decodes the body of a ratchet_tree extension (RFC 9420
// §12.4.3.3). It checks the tree's shape but not its contents: call Validate
// before trusting it.
func ParseRatchetTree(b []byte) (*RatchetTree, error) {
	r := NewReader(b)
	t := r.readRatchetTree()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing ratchet tree: %w", err)
	}
	return t, nil
}

// treeSubtreeLeaves returns the first and last leaf under node x.
func treeSubtreeLeaves(x NodeIndex) (lo, hi LeafIndex) {
	k := Level(x)
	span := uint32(1)<<k - 1
	return LeafIndex((uint32(x) - span) / 2), LeafIndex((uint32(x) + span) / 2)
}

// treeIsBelow reports whether node y is x or a descendant of x.
func treeIsBelow(y, x NodeIndex) bool {
	span := uint32(1)<<Level(x) - 1
	return uint32(y)+span >= uint32(x) && uint32(y) <= uint32(x)+span
}

// Resolution returns the resolution of node x (RFC 9420 §4.1.1): the
// non-blank nodes that together cover every non-blank node below x, with
// each parent's unmerged leaves after it.
func (t *RatchetTree) Resolution(x NodeIndex) []NodeIndex {
	if uint64(x) >= uint64(t.nodes.len()) {
		return nil
	}
	return slices.Clone(t.resolution(x))
}

// appendResolution appends the resolution of x, leaving out the leaves in
// exclude.
func (t *RatchetTree) appendResolution(out []NodeIndex, x NodeIndex, exclude []LeafIndex) []NodeIndex {
	for _, y := range t.resolution(x) {
		if l, ok := y.Leaf(); !ok || !slices.Contains(exclude, l) {
			out = append(out, y)
		}
	}
	return out
}

// resolutionEmpty reports whether the resolution of x is empty, that is,
// whether no node below x (x included) is non-blank.
func (t *RatchetTree) resolutionEmpty(x NodeIndex) bool {
	return len(t.resolution(x)) == 0
}

// FilteredDirectPath returns the filtered direct path of leaf (RFC 9420
// §4.1.2): its direct path without the nodes whose copath child has an empty
// resolution, ordered from the leaf to the root.
func (t *RatchetTree) FilteredDirectPath(leaf LeafIndex) []NodeIndex {
	n := t.NumLeaves()
	var out []NodeIndex
	x := leaf.Node()
	for _, p := range DirectPath(x, n) {
		if !t.resolutionEmpty(Sibling(x, n)) {
			out = append(out, p)
		}
		x = p
	}
	return out
}

// treeCopathChild returns the child of p that is not an ancestor of leaf.
func treeCopathChild(p NodeIndex, leaf LeafIndex) NodeIndex {
	if uint32(leaf.Node()) < uint32(p) {
		return Right(p)
	}
	return Left(p)
}

// treePathChild returns the child of p that is leaf or an ancestor of it.
func treePathChild(p NodeIndex, leaf LeafIndex) NodeIndex {
	if uint32(leaf.Node()) < uint32(p) {
		return Left(p)
	}
	return Right(p)
}
