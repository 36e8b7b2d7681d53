package mls

import "slices"

// This file is the tree hash of RFC 9420 §7.8.

// appendTreeHashInput appends the TreeHashInput of node x, given the tree
// hashes of its children for a parent node. Leaves in exclude are hashed
// as blank and left out of unmerged_leaves lists.
func (t *RatchetTree) appendTreeHashInput(b []byte, x NodeIndex, left, right []byte, exclude []LeafIndex) []byte {
	n := t.nodes.at(x)
	if l, ok := x.Leaf(); ok {
		b = AppendUint8(b, uint8(NodeTypeLeaf))
		b = AppendUint32(b, uint32(l))
		present := n.Leaf != nil && !slices.Contains(exclude, l)
		return AppendOptional(b, present, n.Leaf.append)
	}
	b = AppendUint8(b, uint8(NodeTypeParent))
	b = AppendOptional(b, n.Parent != nil, func(b []byte) []byte {
		p := n.Parent
		if len(exclude) > 0 {
			p = &ParentNode{EncryptionKey: p.EncryptionKey, ParentHash: p.ParentHash}
			for _, l := range n.Parent.UnmergedLeaves {
				if !slices.Contains(exclude, l) {
					p.UnmergedLeaves = append(p.UnmergedLeaves, l)
				}
			}
		}
		return p.append(b)
	})
	b = AppendOpaque(b, left)
	return AppendOpaque(b, right)
}

// TreeHash returns the tree hash of the whole tree, the hash of its root
// (RFC 9420 §7.8). It goes into the GroupContext.
func (t *RatchetTree) TreeHash(s Suite) []byte {
	return t.NodeTreeHash(s, Root(t.NumLeaves()))
}

// NodeTreeHash returns the tree hash of the subtree under x, or nil if x is
// outside the tree.
func (t *RatchetTree) NodeTreeHash(s Suite, x NodeIndex) []byte {
	if uint64(x) >= uint64(t.nodes.len()) {
		return nil
	}
	return t.treeHashExcluding(s, x, nil, nil)
}

// TreeHashes returns the tree hash of every node, indexed by NodeIndex.
func (t *RatchetTree) TreeHashes(s Suite) [][]byte {
	out := make([][]byte, t.nodes.len())
	if t.nodes.len() > 0 {
		t.treeHashExcluding(s, Root(t.NumLeaves()), nil, out)
	}
	return out
}

// treeHashExcluding returns the tree hash of x in the tree where the leaves
// in exclude are blank and removed from every unmerged_leaves list. If all
// is not nil, it records the hash of every node visited. The hashes of
// subtrees that hold no excluded leaf come from the cache (treecache.go).
func (t *RatchetTree) treeHashExcluding(s Suite, x NodeIndex, exclude []LeafIndex, all [][]byte) []byte {
	var scratch []byte
	t.hashesFor(s)
	return t.treeHashRec(s, x, exclude, all, &scratch)
}

// treeHashRec is treeHashExcluding with a buffer for the hash inputs,
// reused across nodes: children are hashed before their parent's input is
// written.
func (t *RatchetTree) treeHashRec(s Suite, x NodeIndex, exclude []LeafIndex, all [][]byte, scratch *[]byte) []byte {
	cached := !excludesBelow(x, exclude)
	if h := t.nodes.entry(x).hash; cached && h != nil && all == nil {
		return h
	}
	var left, right []byte
	if !IsLeaf(x) {
		left = t.treeHashRec(s, Left(x), exclude, all, scratch)
		right = t.treeHashRec(s, Right(x), exclude, all, scratch)
	}
	h := t.nodes.entry(x).hash
	if !cached || h == nil {
		*scratch = t.appendTreeHashInput((*scratch)[:0], x, left, right, exclude)
		h = s.Hash(*scratch)
		if cached {
			t.nodes.entry(x).hash = h
		}
	}
	if all != nil {
		all[x] = h
	}
	return h
}

// excludesBelow reports whether a leaf of exclude is under x.
func excludesBelow(x NodeIndex, exclude []LeafIndex) bool {
	if len(exclude) == 0 {
		return false
	}
	lo, hi := treeSubtreeLeaves(x)
	for _, l := range exclude {
		if l >= lo && l <= hi {
			return true
		}
	}
	return false
}
