package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// FanOutBatch implements store.Store: one transaction, each message in a
// savepoint of its own.
func (s *Store) FanOutBatch(ctx context.Context, sender []byte, items []store.FanOutItem) ([]store.FanOutResult, error) {
	const op = "fan out batch"
	if err := store.CheckFanOutBatch(sender, items); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var (
		results []store.FanOutResult
		refused error // the first refused item's error
	)
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		// A transaction the server aborted runs again from the start.
		results, refused = results[:0], nil
		for _, it := range items {
			if err := checkFanOut(it.GroupID, sender, it.ClientMsgID, it.Payload); err != nil {
				refused = fmt.Errorf("postgres: %s: %w", op, err)
				break
			}
			sp, err := tx.Begin(ctx)
			if err != nil {
				return fmt.Errorf("postgres: %s: savepoint: %w", op, err)
			}
			res, err := s.fanOutOne(ctx, sp, op, sender, it)
			if err != nil {
				if retryable(err) {
					return err
				}
				if rerr := sp.Rollback(ctx); rerr != nil {
					return fmt.Errorf("postgres: %s: roll back a refused message: %w (after %w)", op, rerr, err)
				}
				refused = err
				break
			}
			if err := sp.Commit(ctx); err != nil {
				return fmt.Errorf("postgres: %s: release savepoint: %w", op, err)
			}
			results = append(results, res)
		}
		if len(results) == 0 || allDuplicates(results) {
			return errRollback // nothing to commit
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, refused
}

// allDuplicates reports whether every result is a duplicate.
func allDuplicates(results []store.FanOutResult) bool {
	for _, r := range results {
		if !r.Duplicate {
			return false
		}
	}
	return true
}
