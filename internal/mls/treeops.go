package mls

import (
	"fmt"
	"slices"
)

// This file changes the membership of a ratchet tree as the Add, Update
// and Remove proposals do (RFC 9420 §12.1.1-§12.1.3), with the extending
// and truncating of §7.7. The operations change the public tree only; the
// checks that make a proposal valid belong to the caller.

// AddLeaf puts ln in the leftmost blank leaf, doubling the tree first if
// there is none, and adds the new leaf to the unmerged leaves of every
// non-blank parent on its direct path. It returns the new leaf's index.
func (t *RatchetTree) AddLeaf(ln *LeafNode) (LeafIndex, error) {
	n := t.NumLeaves()
	leaf := LeafIndex(n)
	for i := uint32(0); i < n; i++ {
		if t.nodes.at(NodeIndex(2 * i)).Blank() {
			leaf = LeafIndex(i)
			break
		}
	}
	if uint32(leaf) == n {
		if t.nodes.len()*2+1 > maxTreeNodes {
			return 0, fmt.Errorf("%w: tree full at %d leaves", ErrInvalidTree, n)
		}
		t.nodes.resize(2*t.nodes.len() + 1)
		n = t.NumLeaves()
	}
	t.setNode(leaf.Node(), Node{Leaf: ln})
	for _, x := range DirectPath(leaf.Node(), n) {
		if p := t.nodes.at(x).Parent; p != nil {
			// A new ParentNode: the old one may be shared with a clone.
			np := *p
			i, _ := slices.BinarySearch(p.UnmergedLeaves, leaf)
			np.UnmergedLeaves = slices.Insert(slices.Clone(p.UnmergedLeaves), i, leaf)
			t.setNode(x, Node{Parent: &np})
		}
	}
	return leaf, nil
}

// UpdateLeaf replaces the LeafNode at the non-blank leaf i by ln and blanks
// the nodes of its direct path, as an Update proposal does.
func (t *RatchetTree) UpdateLeaf(i LeafIndex, ln *LeafNode) error {
	if t.LeafNode(i) == nil {
		return fmt.Errorf("%w: update of blank or missing leaf %d", ErrInvalidTree, i)
	}
	t.setNode(i.Node(), Node{Leaf: ln})
	t.blankDirectPath(i)
	return nil
}

// RemoveLeaf blanks the non-blank leaf i and its direct path, then
// truncates the tree while the right half of its leaves is blank, as a
// Remove proposal does.
func (t *RatchetTree) RemoveLeaf(i LeafIndex) error {
	if t.LeafNode(i) == nil {
		return fmt.Errorf("%w: removal of blank or missing leaf %d", ErrInvalidTree, i)
	}
	t.setNode(i.Node(), Node{})
	t.blankDirectPath(i)
	t.truncate()
	return nil
}

// blankDirectPath blanks every node on the direct path of leaf i.
func (t *RatchetTree) blankDirectPath(i LeafIndex) {
	for _, x := range DirectPath(i.Node(), t.NumLeaves()) {
		t.setNode(x, Node{})
	}
}

// truncate halves the tree while the right subtree of the root holds no
// non-blank leaf (RFC 9420 §7.7). A tree keeps at least one leaf.
func (t *RatchetTree) truncate() {
	for n := t.NumLeaves(); n > 1; n = t.NumLeaves() {
		for i := n / 2; i < n; i++ {
			if t.nodes.at(NodeIndex(2*i)).Leaf != nil {
				return
			}
		}
		keep := (t.nodes.len() - 1) / 2
		for x := keep; x < t.nodes.len(); x++ {
			t.index.replace(t.nodes.at(NodeIndex(x)), &Node{})
		}
		t.nodes.resize(keep)
	}
}

// ApplyProposal applies an Add, Update or Remove proposal sent by sender
// to the tree. For an Add it returns the new member's leaf; otherwise the
// leaf changed. Other proposal types do not change the tree and are an
// error here.
func (t *RatchetTree) ApplyProposal(p *Proposal, sender LeafIndex) (LeafIndex, error) {
	switch {
	case p.Type == ProposalAdd && p.Add != nil:
		ln := p.Add.KeyPackage.LeafNode
		return t.AddLeaf(&ln)
	case p.Type == ProposalUpdate && p.Update != nil:
		ln := p.Update.LeafNode
		return sender, t.UpdateLeaf(sender, &ln)
	case p.Type == ProposalRemove && p.Remove != nil:
		return p.Remove.Removed, t.RemoveLeaf(p.Remove.Removed)
	}
	return 0, fmt.Errorf("%w: proposal %v does not change the tree", ErrInvalidTree, p.Type)
}
