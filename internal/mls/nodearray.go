package mls

// This file is the storage of a ratchet tree's nodes and their cache
// entries (treecache.go): an array cut into chunks that trees share after
// Clone. A tree writes a node or an entry in a chunk only once it owns the
// chunk, copying it first if it is shared, so Clone costs O(N/chunkSize)
// and a commit copies only the O(log N) chunks along its path.
//
// Cached values may be filled in a shared chunk: a node in a chunk that two
// trees still share has the same subtree in both (a change drops the
// entries of the changed node's ancestors, which makes their chunks
// private first), so the value is right for both.

const (
	chunkShift = 6
	chunkSize  = 1 << chunkShift
)

type nodeChunk struct {
	nodes [chunkSize]Node
	cache [chunkSize]treeCacheEntry
}

// nodeArray is the node array of one tree.
type nodeArray struct {
	width  int
	chunks []*nodeChunk
	owned  []bool // chunks[i] is this array's own
}

// newNodeArray stores nodes.
func newNodeArray(nodes []Node) nodeArray {
	var a nodeArray
	a.resize(len(nodes))
	for i := range nodes {
		a.chunks[i>>chunkShift].nodes[i&(chunkSize-1)] = nodes[i]
	}
	return a
}

func (a *nodeArray) len() int { return a.width }

// at returns node x for reading.
func (a *nodeArray) at(x NodeIndex) *Node {
	return &a.chunks[x>>chunkShift].nodes[x&(chunkSize-1)]
}

// entry returns the cache entry of node x, for reading or filling in.
func (a *nodeArray) entry(x NodeIndex) *treeCacheEntry {
	return &a.chunks[x>>chunkShift].cache[x&(chunkSize-1)]
}

// own makes the chunk of x this array's own and returns it.
func (a *nodeArray) own(x NodeIndex) *nodeChunk {
	i := int(x >> chunkShift)
	if !a.owned[i] {
		c := *a.chunks[i]
		a.chunks[i] = &c
		a.owned[i] = true
	}
	return a.chunks[i]
}

// set puts n at x and drops x's cache entry.
func (a *nodeArray) set(x NodeIndex, n Node) {
	c := a.own(x)
	c.nodes[x&(chunkSize-1)] = n
	c.cache[x&(chunkSize-1)] = treeCacheEntry{}
}

// dropEntry drops x's cache entry.
func (a *nodeArray) dropEntry(x NodeIndex) {
	if e := a.entry(x); e.hash != nil || e.resOK {
		a.own(x).cache[x&(chunkSize-1)] = treeCacheEntry{}
	}
}

// resize extends the array with blank nodes or cuts it to width.
func (a *nodeArray) resize(width int) {
	for width > len(a.chunks)*chunkSize {
		a.chunks = append(a.chunks, &nodeChunk{})
		a.owned = append(a.owned, true)
	}
	// Slots past the old width may hold what a truncation left.
	for x := NodeIndex(a.width); int(x) < width; x++ {
		if e := a.entry(x); !a.at(x).Blank() || e.hash != nil || e.resOK {
			a.set(x, Node{})
		}
	}
	a.width = width
	n := (width + chunkSize - 1) >> chunkShift
	clear(a.chunks[n:])
	a.chunks, a.owned = a.chunks[:n], a.owned[:n]
}

// clone returns an array that shares every chunk with a; from then on both
// copy a chunk before writing it.
func (a *nodeArray) clone() nodeArray {
	clear(a.owned)
	return nodeArray{width: a.width, chunks: append([]*nodeChunk(nil), a.chunks...), owned: make([]bool, len(a.owned))}
}
