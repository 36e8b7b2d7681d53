package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// directQuota counts the direct message just appended to recipient's
// queue (whose row tx holds locked) against the quotas of package store
// and marks it as a stranger's when its sender shares no group with
// recipient.
func (s *Store) directQuota(ctx context.Context, tx pgx.Tx, recipient, sender []byte, seq int64, size int) error {
	stranger, err := s.isStranger(ctx, tx, recipient, sender)
	if err != nil || (!stranger && s.limits.GroupReserve <= 0) {
		return err
	}
	var n, b int64
	if stranger {
		n, b = 1, int64(size)
	}
	var depth, strangers, strangerBytes int64
	if err := tx.QueryRow(ctx, `
UPDATE queues SET stranger_count = stranger_count + $2, stranger_bytes = stranger_bytes + $3
WHERE recipient = $1 RETURNING depth, stranger_count, stranger_bytes`, recipient, n, b).Scan(&depth, &strangers, &strangerBytes); err != nil {
		return fmt.Errorf("count quota: %w", err)
	}
	if err := s.limits.DirectRoom(recipient, depth, strangers, strangerBytes, stranger); err != nil {
		return err
	}
	if stranger {
		if _, err := tx.Exec(ctx, `UPDATE messages SET stranger = true WHERE recipient = $1 AND seq = $2`, recipient, seq); err != nil {
			return fmt.Errorf("mark stranger's message: %w", err)
		}
	}
	return nil
}

// isStranger reports whether sender shares no group roster with recipient
// (see store.Limits.StrangerWithoutLookup).
func (s *Store) isStranger(ctx context.Context, tx pgx.Tx, recipient, sender []byte) (bool, error) {
	if stranger, decided := s.limits.StrangerWithoutLookup(recipient, sender); decided {
		return stranger, nil
	}
	var shared bool
	if err := tx.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM group_members a JOIN group_members b ON b.group_id = a.group_id
WHERE a.identity = $1 AND b.identity = $2)`, sender, recipient).Scan(&shared); err != nil {
		return false, fmt.Errorf("check shared groups: %w", err)
	}
	return !shared, nil
}

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
