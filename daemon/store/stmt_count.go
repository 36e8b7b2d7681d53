package store

import "sync/atomic"

// The store counts the statements its write transactions run, so that a
// test can hold a hot path to the statements it needs (a statement costs
// 10–30 µs, more than most of what it stores).

// writeStatements counts them.
type writeStatements struct{ n atomic.Int64 }

// WriteStatements is the number of statements write transactions have run
// since Open (savepoints and their releases included; begin and commit
// not).
func (s *Store) WriteStatements() int64 { return s.writes.n.Load() }

// countStatement counts one statement of tx.
func (tx *Tx) countStatement() {
	if !tx.readOnly && tx.writes != nil {
		tx.writes.n.Add(1)
	}
}
