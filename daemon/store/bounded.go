package store

// bounded is a map whose values count a size each: putting a value past
// maxEntries values or maxBytes of sizes drops others, arbitrary ones, and
// a value larger than maxBytes is not kept. Its users lock around it.
type bounded[V any] struct {
	m     map[string]sized[V]
	bytes int
}

type sized[V any] struct {
	v    V
	size int
}

// get returns k's value.
func (b *bounded[V]) get(k string) (V, bool) {
	e, ok := b.m[k]
	return e.v, ok
}

// remove drops k's value and returns it.
func (b *bounded[V]) remove(k string) (V, bool) {
	e, ok := b.m[k]
	if ok {
		delete(b.m, k)
		b.bytes -= e.size
	}
	return e.v, ok
}

// put keeps v, of size bytes, as k's value.
func (b *bounded[V]) put(k string, v V, size, maxEntries, maxBytes int) {
	b.remove(k)
	if size > maxBytes {
		return
	}
	if b.m == nil {
		b.m = map[string]sized[V]{}
	}
	for key := range b.m {
		if len(b.m) < maxEntries && b.bytes+size <= maxBytes {
			break
		}
		b.remove(key) // an arbitrary one
	}
	b.m[k] = sized[V]{v, size}
	b.bytes += size
}

// clear drops every value.
func (b *bounded[V]) clear() { b.m, b.bytes = nil, 0 }
