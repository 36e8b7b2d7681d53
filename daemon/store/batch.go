package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// Every Update waits for its commit to reach the disk (synchronous=FULL),
// one fsync each. Two ways to need fewer:
//
//   - Several changes that may each fail on their own share one
//     transaction, each inside Tx.Savepoint: a failed one is rolled back
//     alone, and one commit makes them all durable (the receive path
//     applies a pushed batch of envelopes so).
//   - A change that may be lost in a power cut or OS crash, because what
//     it records is found again or done again anyway, is committed by
//     UpdateNoSync without waiting for the disk (the outbox's "sent" mark:
//     the node deduplicates a redelivery by the item's client message id).
//     Such a commit is whole or absent, never half, and it is made durable
//     by the next Update (the log is written in order), a checkpoint or
//     Close. A crash of the process alone loses nothing: the commit is in
//     the operating system's hands.

// Savepoint runs fn inside a savepoint of tx. When fn fails, what it wrote
// is rolled back, the rest of tx stays, and fn's error is returned
// unchanged. When the savepoint itself fails, tx can no longer be trusted:
// Savepoint returns that failure (not fn's error) and the transaction will
// not commit, whatever the function given to Update returns. In a View
// transaction fn just runs.
func (tx *Tx) Savepoint(fn func(*Tx) error) error {
	if tx.readOnly {
		return fn(tx)
	}
	if tx.broken != nil {
		return tx.broken
	}
	// One name for all: savepoints nest, and SQLite's RELEASE and
	// ROLLBACK TO name the innermost of that name, so the three statements
	// are prepared once and reused.
	if _, err := tx.execAny("SAVEPOINT sp"); err != nil {
		return tx.breaks(fmt.Errorf("store: savepoint: %w", err))
	}
	kept, added, after := len(tx.kept), len(tx.freshAdded), len(tx.after)
	err := fn(tx)
	if err != nil {
		// What fn kept is forgotten with its writes; what it took stays
		// taken (fn may have changed it). The outbox items it added are
		// gone too.
		tx.kept = tx.kept[:kept]
		tx.after = tx.after[:after]
		tx.freshAdded = tx.freshAdded[:added]
		if _, rerr := tx.execAny("ROLLBACK TO sp"); rerr != nil {
			return tx.breaks(fmt.Errorf("store: roll back to savepoint: %w (after: %v)", rerr, err))
		}
	}
	if _, rerr := tx.execAny("RELEASE sp"); rerr != nil {
		return tx.breaks(fmt.Errorf("store: release savepoint: %w", rerr))
	}
	return err
}

// breaks marks tx as failed by err and returns err.
func (tx *Tx) breaks(err error) error {
	if tx.broken == nil {
		tx.broken = err
	}
	return err
}

// UpdateNoSync is Update whose commit does not wait for the disk; see the
// top of this file for what may use it.
func (s *Store) UpdateNoSync(ctx context.Context, fn func(*Tx) error) (err error) {
	defer s.stmts.prepareWanted(s.db) // after the connection is back
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=NORMAL"); err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		// The connection goes back to the pool only as every other
		// transaction needs it: synchronous=FULL.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous=FULL"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("store: restore synchronous=FULL: %w", rerr))
		}
	}()
	return s.runTx(ctx, false, fn, func() (*sql.Tx, error) { return conn.BeginTx(ctx, nil) })
}
