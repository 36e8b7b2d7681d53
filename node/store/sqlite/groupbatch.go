package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/quicproquo/quicproquo/node/store"
)

// The savepoint of each message of a FanOutBatch (inside the call's own).
var (
	savepointItem = hot(`SAVEPOINT item`)
	rollbackItem  = hot(`ROLLBACK TO item`)
	releaseItem   = hot(`RELEASE item`)
)

// FanOutBatch implements store.Store: one write call, so the batch shares
// its commit (and fsync) with the other calls waiting for the writer; each
// message runs in a savepoint of its own.
func (s *Store) FanOutBatch(ctx context.Context, sender []byte, items []store.FanOutItem) ([]store.FanOutResult, error) {
	const op = "fan out batch"
	if err := store.CheckFanOutBatch(sender, items); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var (
		results []store.FanOutResult
		refused error // the first refused item's error
	)
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		results, refused = results[:0], nil
		memo := &rosterMemo{} // this attempt's (the write may run again)
		for _, it := range items {
			if err := checkFanOut(it.GroupID, sender, it.ClientMsgID, it.Payload); err != nil {
				refused = fmt.Errorf("sqlite: %s: %w", op, err)
				return nil
			}
			if _, err := s.exec(ctx, tx, savepointItem); err != nil {
				return fmt.Errorf("sqlite: %s: savepoint: %w", op, err)
			}
			res, err := s.fanOutOne(ctx, tx, op, sender, it, memo)
			if err != nil {
				if _, rerr := s.exec(ctx, tx, rollbackItem); rerr != nil {
					return fmt.Errorf("sqlite: %s: roll back a refused message: %w (after %w)", op, rerr, err)
				}
				// The writer's memory of the queues the message touched
				// is undone with it (see queuecache.go).
				s.qc.rolledBack()
				if _, rerr := s.exec(ctx, tx, releaseItem); rerr != nil {
					return fmt.Errorf("sqlite: %s: release savepoint: %w", op, rerr)
				}
				refused = err
				return nil
			}
			if _, err := s.exec(ctx, tx, releaseItem); err != nil {
				return fmt.Errorf("sqlite: %s: release savepoint: %w", op, err)
			}
			results = append(results, res)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, refused
}
