package store

import (
	"bytes"
	"sync"
)

// Values decoded from a row's bytes (a group's MLS state) are kept in
// memory, so that the next transaction need not decode them again and the
// caches the decoded value built up (tree hashes, parsed keys) survive.
// What is kept always matches the disk:
//
//   - A value is handed to one transaction at a time: Decoded takes it out
//     of the memo, and only KeepDecoded, with the bytes just written to the
//     row, puts it back. A value used without being kept again (read, or
//     changed by an operation that then failed) is dropped, and the next
//     Decoded decodes the row afresh.
//   - What KeepDecoded keeps enters the memo only when the transaction
//     commits; when the transaction, or the savepoint around the call,
//     rolls back, it is forgotten.
//   - Decoded hands out a kept value only when the row's bytes, read in the
//     transaction, equal the bytes it was kept with: a row written by any
//     other path, or rewritten by a restore, is decoded again.
//   - View transactions, which run beside write transactions, always
//     decode: the memo serves the write path, which its caller serializes.
//
// The memo holds at most memoEntries values and memoBytes bytes of rows;
// past that, values are dropped (and decoded again when next needed).

// Bounds of the memo.
const (
	memoEntries = 64
	memoBytes   = 64 << 20
)

// memo is the Store's memory of decoded values.
type memo struct {
	mu sync.Mutex
	m  bounded[memoEntry] // by key, sized by the row's bytes
}

type memoEntry struct {
	raw []byte
	v   any
}

// take removes key's value and returns it when it was kept with raw.
func (m *memo) take(key string, raw []byte) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m.remove(key)
	if !ok || !bytes.Equal(e.raw, raw) {
		return nil, false
	}
	return e.v, true
}

// put keeps what a committed transaction kept, in order.
func (m *memo) put(kept []keptValue) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range kept {
		if k.v == nil {
			continue // taken again later in the transaction
		}
		m.m.put(k.key, memoEntry{raw: k.raw, v: k.v}, len(k.raw), memoEntries, memoBytes)
	}
}

// forget drops every value.
func (m *memo) forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m.clear()
}

// keptValue is a value a transaction keeps (nil once taken again).
type keptValue struct {
	key string
	raw []byte
	v   any
}

// Decoded returns the value of the row key, whose bytes read in tx are
// raw: the value kept with exactly these bytes, or decode(raw), which
// must return a pointer (values are told apart by identity). The value is
// tx's alone; it returns to the memo only through KeepDecoded.
func (tx *Tx) Decoded(key string, raw []byte, decode func([]byte) (any, error)) (any, error) {
	if !tx.readOnly && tx.memo != nil {
		for i := len(tx.kept) - 1; i >= 0; i-- {
			k := &tx.kept[i]
			if k.key != key || k.v == nil {
				continue
			}
			v := k.v
			k.v = nil // taken: kept again only by another KeepDecoded
			if bytes.Equal(k.raw, raw) {
				tx.handOut(v)
				return v, nil
			}
			break
		}
		if v, ok := tx.memo.take(key, raw); ok {
			tx.handOut(v)
			return v, nil
		}
	}
	v, err := decode(raw)
	if err != nil {
		return nil, err
	}
	if !tx.readOnly {
		tx.handOut(v)
	}
	return v, nil
}

func (tx *Tx) handOut(v any) {
	if tx.handed == nil {
		tx.handed = map[any]bool{}
	}
	tx.handed[v] = true
}

// KeepDecoded keeps v, a value Decoded handed to tx, as the value of the
// row key, whose bytes tx just wrote as raw (raw must not change
// afterwards). It enters the memo when tx commits. A value Decoded did not
// hand to tx (one made some other way) is not kept: only decoded values
// are known to be what decoding raw gives.
func (tx *Tx) KeepDecoded(key string, raw []byte, v any) {
	if tx.readOnly || tx.memo == nil || !tx.handed[v] {
		return
	}
	for i := range tx.kept {
		if tx.kept[i].key == key {
			tx.kept[i].v = nil // superseded
		}
	}
	tx.kept = append(tx.kept, keptValue{key: key, raw: raw, v: v})
}
