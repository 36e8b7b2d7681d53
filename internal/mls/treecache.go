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
// (the only nodes whose subtree changed). Clone then copies only the node
// array and the cache, sharing the node values. Extending or truncating the
// tree leaves the remaining entries valid: no subtree of a remaining node
// changes.

// treeCacheEntry is what is known of one node's subtree. hash is nil when
// not computed; res is valid only when resOK.
type treeCacheEntry struct {
	hash  []byte
	res   []NodeIndex
	resOK bool
}

// treeCache holds one entry per node, and the suite the hashes are for.
type treeCache struct {
	suite   CipherSuite
	entries []treeCacheEntry
}

// cacheFor returns the tree's cache, created or resized to the tree's
// width.
func (t *RatchetTree) cacheFor() *treeCache {
	if t.cache == nil {
		t.cache = &treeCache{}
	}
	c := t.cache
	if len(c.entries) != len(t.nodes) {
		if len(c.entries) > len(t.nodes) {
			c.entries = c.entries[:len(t.nodes)]
		} else {
			c.entries = append(c.entries, make([]treeCacheEntry, len(t.nodes)-len(c.entries))...)
		}
	}
	return c
}

// hashCache returns the cache with its hashes valid for suite s.
func (t *RatchetTree) hashCache(s Suite) *treeCache {
	c := t.cacheFor()
	if c.suite != s.ID() {
		for i := range c.entries {
			c.entries[i].hash = nil
		}
		c.suite = s.ID()
	}
	return c
}

// setNode puts n at x and drops the cached values that depend on x.
func (t *RatchetTree) setNode(x NodeIndex, n Node) {
	old := t.nodes[x]
	t.nodes[x] = n
	t.touch(x)
	t.index.replace(&old, &n)
}

// touch drops the cached values of x and of every ancestor of x.
func (t *RatchetTree) touch(x NodeIndex) {
	if t.cache == nil {
		return
	}
	c := t.cacheFor()
	n := t.NumLeaves()
	for {
		c.entries[x] = treeCacheEntry{}
		p := Parent(x, n)
		if p == x {
			return
		}
		x = p
	}
}

// warm fills the tree hash cache for s and the key index, once: after that
// every change keeps them up to date along its path.
func (t *RatchetTree) warm(s Suite) {
	t.TreeHash(s)
	t.keyIndex()
}

// resolution returns the resolution of x from the cache, computing what is
// missing. The result is shared with the cache: do not modify it.
func (t *RatchetTree) resolution(x NodeIndex) []NodeIndex {
	c := t.cacheFor()
	return t.resolutionRec(c, x)
}

func (t *RatchetTree) resolutionRec(c *treeCache, x NodeIndex) []NodeIndex {
	e := &c.entries[x]
	if e.resOK {
		return e.res
	}
	var res []NodeIndex
	n := &t.nodes[x]
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
		left := t.resolutionRec(c, Left(x))
		right := t.resolutionRec(c, Right(x))
		switch {
		case len(right) == 0:
			res = left
		case len(left) == 0:
			res = right
		default:
			res = append(slices.Clip(left), right...)
		}
	}
	c.entries[x] = treeCacheEntry{hash: e.hash, res: res, resOK: true}
	return res
}

// checkCaches recomputes every cached value from scratch and reports the
// first node whose cached tree hash or resolution differs, for tests.
func (t *RatchetTree) checkCaches(s Suite) (NodeIndex, bool) {
	fresh := &RatchetTree{nodes: t.nodes}
	if t.cache != nil {
		for x, e := range t.cacheFor().entries {
			x := NodeIndex(x)
			if e.hash != nil && t.cache.suite == s.ID() && !slices.Equal(e.hash, fresh.treeHashExcluding(s, x, nil, nil)) {
				return x, false
			}
			if e.resOK && !slices.Equal(e.res, fresh.appendResolution(nil, x, nil)) {
				return x, false
			}
		}
	}
	if t.index != nil && !t.index.equal(newKeyIndex(t.nodes)) {
		return 0, false
	}
	return 0, true
}
