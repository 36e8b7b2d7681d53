package mls

import (
	"maps"
	"slices"
)

// This file indexes the keys of a ratchet tree, so that the checks after
// every commit — no HPKE key in two nodes, no signature key in two leaves
// (RFC 9420 §7.3) — cost O(1) per changed node instead of a scan of all N
// nodes.
//
// The index is built on first use and then kept up to date by setNode. It
// is layered so that Clone does not copy it: counts are summed over shared
// layers that are never written again, and the tree's own top layer, which
// Clone freezes into a new shared layer. Small top layers are merged into
// the one below (as in a log-structured merge), which keeps the number of
// layers logarithmic in the number of changes.

// keyCounts counts keys, or changes of counts in a layer above the first.
type keyCounts struct {
	enc map[string]int // HPKE keys of all nodes
	sig map[string]int // signature keys of leaves
}

func newKeyCounts() *keyCounts {
	return &keyCounts{enc: map[string]int{}, sig: map[string]int{}}
}

func (k *keyCounts) size() int { return len(k.enc) + len(k.sig) }

type keyIndex struct {
	layers []*keyCounts // shared, read only, oldest first
	own    *keyCounts   // this tree's changes since the last Clone
	dups   int          // keys counted more than once
}

// maxKeyIndexLayers bounds the number of shared layers a lookup walks.
const maxKeyIndexLayers = 12

// newKeyIndex indexes nodes.
func newKeyIndex(nodes *nodeArray) *keyIndex {
	ix := &keyIndex{own: newKeyCounts()}
	for x := range nodes.len() {
		ix.add(nodes.at(NodeIndex(x)), 1)
	}
	return ix
}

// fork returns a copy of ix for a cloned tree; both share the layers.
func (ix *keyIndex) fork() *keyIndex {
	if ix == nil {
		return nil
	}
	if ix.own.size() > 0 {
		ix.layers = append(slices.Clip(ix.layers), ix.own)
		ix.compact()
		ix.own = newKeyCounts()
	}
	return &keyIndex{layers: ix.layers, own: newKeyCounts(), dups: ix.dups}
}

// compact merges the top layer into the one below while it is at least half
// its size, or while there are too many layers. Merging builds a new layer:
// the old ones may be shared.
func (ix *keyIndex) compact() {
	for n := len(ix.layers); n >= 2; n = len(ix.layers) {
		top, below := ix.layers[n-1], ix.layers[n-2]
		if 2*top.size() < below.size() && n <= maxKeyIndexLayers {
			return
		}
		m := &keyCounts{enc: maps.Clone(below.enc), sig: maps.Clone(below.sig)}
		mergeCounts(m.enc, top.enc)
		mergeCounts(m.sig, top.sig)
		ix.layers = append(ix.layers[:n-2:n-2], m)
	}
}

func mergeCounts(dst, src map[string]int) {
	for k, v := range src {
		if dst[k] += v; dst[k] == 0 {
			delete(dst, k)
		}
	}
}

// count returns how often k is counted in the map chosen by pick.
func (ix *keyIndex) count(k string, pick func(*keyCounts) map[string]int) int {
	c := pick(ix.own)[k]
	for _, l := range ix.layers {
		c += pick(l)[k]
	}
	return c
}

func pickEnc(k *keyCounts) map[string]int { return k.enc }
func pickSig(k *keyCounts) map[string]int { return k.sig }

// bump adds d (±1) to the count of k.
func (ix *keyIndex) bump(k string, d int, pick func(*keyCounts) map[string]int) {
	before := ix.count(k, pick)
	m := pick(ix.own)
	if m[k] += d; m[k] == 0 {
		delete(m, k)
	}
	switch after := before + d; {
	case before < 2 && after >= 2:
		ix.dups++
	case before >= 2 && after < 2:
		ix.dups--
	}
}

// add counts the keys of n d (±1) times.
func (ix *keyIndex) add(n *Node, d int) {
	if n.Blank() {
		return
	}
	ix.bump(string(n.EncryptionKey()), d, pickEnc)
	if n.Leaf != nil {
		ix.bump(string(n.Leaf.SignatureKey), d, pickSig)
	}
}

// replace records that old was replaced by n. A nil index does nothing.
func (ix *keyIndex) replace(old, n *Node) {
	if ix == nil {
		return
	}
	ix.add(old, -1)
	ix.add(n, 1)
}

// equal reports whether ix and o count the same keys and credentials, for
// tests.
func (ix *keyIndex) equal(o *keyIndex) bool {
	flat := func(ix *keyIndex) *keyCounts {
		m := newKeyCounts()
		for _, l := range append(slices.Clip(ix.layers), ix.own) {
			mergeCounts(m.enc, l.enc)
			mergeCounts(m.sig, l.sig)
		}
		return m
	}
	a, b := flat(ix), flat(o)
	return ix.dups == o.dups && maps.Equal(a.enc, b.enc) && maps.Equal(a.sig, b.sig)
}

// keyIndex returns the tree's key index, building it on first use.
func (t *RatchetTree) keyIndex() *keyIndex {
	if t.index == nil {
		t.index = newKeyIndex(&t.nodes)
	}
	return t.index
}
