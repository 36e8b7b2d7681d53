package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// Expire implements store.Janitor. It locks the queues it changes in key
// order, like every writer, so it never deadlocks with them.
func (s *Store) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	const op = "expire"
	var n int64
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		n = 0
		if _, err := tx.Exec(ctx, `
SELECT 1 FROM queues WHERE recipient IN (SELECT DISTINCT recipient FROM messages WHERE enqueued_at < $1)
ORDER BY recipient FOR UPDATE`, cutoff); err != nil {
			return fmt.Errorf("postgres: %s: lock queues: %w", op, err)
		}
		if _, err := tx.Exec(ctx, `
UPDATE queues q SET depth = q.depth - g.n
FROM (SELECT recipient, count(*) AS n FROM messages WHERE enqueued_at < $1 GROUP BY recipient) g
WHERE q.recipient = g.recipient`, cutoff); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM messages WHERE enqueued_at < $1`, cutoff)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return int(n), err
}

// DiskUsage implements store.Janitor: the size of the whole database.
func (s *Store) DiskUsage(ctx context.Context) (int64, error) {
	const op = "disk usage"
	var used int64
	err := s.read(ctx, op, func(ctx context.Context) error {
		if err := s.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&used); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return used, err
}

// LastResortKeyPackage implements store.Janitor.
func (s *Store) LastResortKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	const op = "last-resort key package"
	if err := store.CheckKey("identity", identity); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var pkg []byte
	err := s.read(ctx, op, func(ctx context.Context) (err error) {
		if pkg, err = lastResort(ctx, s.pool, identity); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return pkg, err
}
