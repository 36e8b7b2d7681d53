package mls

import (
	"bytes"
	"fmt"
	"slices"
)

// This file is the parent hash of RFC 9420 §7.9: computing the chain an
// UpdatePath sets, and checking that every parent node of a received tree
// is parent-hash valid (§7.9.2).

// parentHash returns the parent hash of p with a copath child whose original
// tree hash is siblingHash: the hash of its ParentHashInput.
func parentHash(s Suite, p *ParentNode, siblingHash []byte) []byte {
	b := AppendOpaque(nil, p.EncryptionKey)
	b = AppendOpaque(b, p.ParentHash)
	b = AppendOpaque(b, siblingHash)
	return s.Hash(b)
}

// originalSiblingTreeHash returns the tree hash of sib, the copath child of
// the parent node at p, as it was when p was last set: p's unmerged leaves
// are taken out of the subtree. hashes, if not nil, holds the current tree
// hash of every node.
func (t *RatchetTree) originalSiblingTreeHash(s Suite, p, sib NodeIndex, hashes [][]byte) []byte {
	lo, hi := treeSubtreeLeaves(sib)
	var exclude []LeafIndex
	for _, l := range t.nodes.at(p).Parent.UnmergedLeaves {
		if l >= lo && l <= hi {
			exclude = append(exclude, l)
		}
	}
	if len(exclude) == 0 && hashes != nil {
		return hashes[sib]
	}
	return t.treeHashExcluding(s, sib, exclude, nil)
}

// setPathParentHashes fills in the parent_hash of each node of path, the
// filtered direct path of leaf whose nodes were just set, from the root
// down, and returns the parent hash for the leaf itself (RFC 9420 §7.9).
func (t *RatchetTree) setPathParentHashes(s Suite, leaf LeafIndex, path []NodeIndex) []byte {
	ph := []byte{}
	for i := len(path) - 1; i >= 0; i-- {
		p := t.nodes.at(path[i]).Parent // new in setPath, not shared yet
		p.ParentHash = ph
		t.touch(path[i])
		ph = parentHash(s, p, t.NodeTreeHash(s, treeCopathChild(path[i], leaf)))
	}
	return ph
}

// nodeParentHash returns the parent_hash field of the node at x (nil for
// a blank node or a leaf not set by a commit).
func (t *RatchetTree) nodeParentHash(x NodeIndex) []byte {
	n := t.nodes.at(x)
	switch {
	case n.Parent != nil:
		return n.Parent.ParentHash
	case n.Leaf != nil && n.Leaf.Source == LeafNodeSourceCommit:
		return n.Leaf.ParentHash
	}
	return nil
}

// VerifyParentHashes checks that every non-blank parent node is
// parent-hash valid (RFC 9420 §7.9.2), top down: for each such node P,
// exactly one descendant D has a parent_hash equal to P's parent hash with
// the other child as copath child, where D is in the resolution of P's child
// C and the rest of that resolution is exactly P's unmerged leaves under C.
func (t *RatchetTree) VerifyParentHashes(s Suite) error {
	hashes := t.TreeHashes(s)
	for x := range t.nodes.len() {
		p := t.nodes.at(NodeIndex(x)).Parent
		if p == nil {
			continue
		}
		px := NodeIndex(x)
		valid := 0
		for _, c := range [2]NodeIndex{Left(px), Right(px)} {
			sib := Right(px)
			if c == sib {
				sib = Left(px)
			}
			d, ok := t.parentHashCandidate(px, c)
			if !ok {
				continue
			}
			want := parentHash(s, p, t.originalSiblingTreeHash(s, px, sib, hashes))
			if bytes.Equal(t.nodeParentHash(d), want) {
				valid++
			}
		}
		if valid != 1 {
			return fmt.Errorf("%w: parent node %d is not parent-hash valid", ErrInvalidTree, px)
		}
	}
	return nil
}

// parentHashCandidate returns the one node D of the resolution of c (a child
// of p) that is not among p's unmerged leaves, provided that the rest of the
// resolution is exactly p's unmerged leaves under c.
func (t *RatchetTree) parentHashCandidate(p, c NodeIndex) (NodeIndex, bool) {
	res := t.Resolution(c)
	lo, hi := treeSubtreeLeaves(c)
	var d NodeIndex
	found, unmerged := 0, 0
	for _, y := range res {
		l, isLeaf := y.Leaf()
		if isLeaf && slices.Contains(t.nodes.at(p).Parent.UnmergedLeaves, l) {
			unmerged++
			continue
		}
		d = y
		found++
	}
	if found != 1 {
		return 0, false
	}
	for _, l := range t.nodes.at(p).Parent.UnmergedLeaves {
		if l >= lo && l <= hi {
			unmerged--
		}
	}
	return d, unmerged == 0
}
