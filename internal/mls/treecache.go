package mls

import "slices"

// This file keeps what a ratchet tree derives from its subtrees — the tree
// hash (RFC 9420 §7.8) and the resolution (§4.1.1) of each node — so that a
// commit recomputes them along the changed path only: O(log N) work for a
// path in a tree of N leaves instead of O(N).
//
// The tree is copy-on-write: a LeafNode or ParentNode in the tree is never
// written to once it is there; a change puts a new Node at its index with
// setNode, which drops the cached values of that node and its ancestors
// (the only nodes whose subtree changed). Clone shares the node values and
// the chunks of the node array (nodearray.go), so a commit copies only the
// chunks on its path. Extending or truncating the tree leaves the remaining
// entries valid: no subtree of a remaining node changes.

// treeCacheEntry is what is known of one node's subtree. hash is nil when
// not computed; res is valid only when resOK.
type treeCacheEntry struct {
	hash  []byte
	res   []NodeIndex
	resOK bool
}

// hashesFor makes the cached tree hashes those of suite s, dropping any
// of another suite.
func (t *RatchetTree) hashesFor(s Suite) {
	if t.hashed && t.hashSuite == s.ID() {
		return
	}
	if t.hashed {
		for x := range t.nodes.len() {
			if t.nodes.entry(NodeIndex(x)).hash != nil {
				t.nodes.own(NodeIndex(x)).cache[x&(chunkSize-1)].hash = nil
			}
		}
	}
	t.hashSuite, t.hashed = s.ID(), true
}

// setNode puts n at x and drops the cached values that depend on x.
func (t *RatchetTree) setNode(x NodeIndex, n Node) {
	old := *t.nodes.at(x)
	t.nodes.set(x, n)
	t.touch(x)
	t.index.replace(&old, &n)
}

// touch drops the cached values of x and of every ancestor of x.
func (t *RatchetTree) touch(x NodeIndex) {
	n := t.NumLeaves()
	for {
		t.nodes.dropEntry(x)
		p := Parent(x, n)
		if p == x {
			return
		}
		x = p
	}
}

// warm fills the tree hash cache for s and the key index, and marks the
// wholly blank subtrees, once: after that every change keeps them up to
// date along its path.
func (t *RatchetTree) warm(s Suite) {
	t.TreeHash(s)
	t.keyIndex()
	t.markBlanks()
}

// markBlanks caches the empty resolution of every subtree without a
// non-blank node, once per tree (its clones inherit the marks). A tree
// whose leaf count is not a power of two has such subtrees on the right of
// its last member, up to half the tree: without the marks the first
// filtered direct path that passes them (every commit from or to a member
// at the right edge) walks them node by node.
func (t *RatchetTree) markBlanks() {
	if t.blanksMarked || t.nodes.len() == 0 {
		return
	}
	t.blanksMarked = true
	var mark func(x NodeIndex) bool
	mark = func(x NodeIndex) bool {
		blank := t.nodes.at(x).Blank()
		if !IsLeaf(x) {
			l, r := mark(Left(x)), mark(Right(x))
			blank = blank && l && r
		}
		if e := t.nodes.entry(x); blank && !e.resOK {
			e.res, e.resOK = nil, true
		}
		return blank
	}
	mark(Root(t.NumLeaves()))
}

// resolution returns the resolution of x from the cache, computing what is
// missing. The result is shared with the cache: do not modify it.
func (t *RatchetTree) resolution(x NodeIndex) []NodeIndex {
	e := t.nodes.entry(x)
	if e.resOK {
		return e.res
	}
	var res []NodeIndex
	n := t.nodes.at(x)
	switch {
	case n.Leaf != nil:
		res = []NodeIndex{x}
	case n.Parent != nil:
		res = make([]NodeIndex, 0, 1+len(n.Parent.UnmergedLeaves))
		res = append(res, x)
		for _, l := range n.Parent.UnmergedLeaves {
			res = append(res, l.Node())
		}
	case !IsLeaf(x):
		left := t.resolution(Left(x))
		right := t.resolution(Right(x))
		switch {
		case len(right) == 0:
			res = left
		case len(left) == 0:
			res = right
		default:
			res = append(slices.Clip(left), right...)
		}
	}
	e.res, e.resOK = res, true
	return res
}

// checkCaches recomputes every cached value from scratch and reports the
// first node whose cached tree hash or resolution differs, for tests.
func (t *RatchetTree) checkCaches(s Suite) (NodeIndex, bool) {
	nodes := make([]Node, t.nodes.len())
	for x := range nodes {
		nodes[x] = *t.nodes.at(NodeIndex(x))
	}
	fresh := &RatchetTree{nodes: newNodeArray(nodes)}
	for x := range NodeIndex(t.nodes.len()) {
		e := t.nodes.entry(x)
		if e.hash != nil && t.hashSuite == s.ID() && !slices.Equal(e.hash, fresh.treeHashExcluding(s, x, nil, nil)) {
			return x, false
		}
		if e.resOK && !slices.Equal(e.res, fresh.appendResolution(nil, x, nil)) {
			return x, false
		}
	}
	if t.index != nil && !t.index.equal(newKeyIndex(&t.nodes)) {
		return 0, false
	}
	return 0, true
}
