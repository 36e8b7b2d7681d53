package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// strangerQuery is true when its two identities share a group roster.
const strangerQuery = `
SELECT EXISTS (SELECT 1 FROM group_members a JOIN group_members b ON b.group_id = a.group_id
WHERE a.identity = ? AND b.identity = ?)`

// isStranger reports whether sender shares no group roster with recipient
// (see store.Limits.StrangerWithoutLookup).
func (s *Store) isStranger(ctx context.Context, tx *sql.Tx, recipient, sender []byte) (bool, error) {
	if stranger, decided := s.limits.StrangerWithoutLookup(recipient, sender); decided {
		return stranger, nil
	}
	var shared bool
	err := tx.StmtContext(ctx, s.strangerStmt).QueryRowContext(ctx, sender, recipient).Scan(&shared)
	if err != nil {
		return false, fmt.Errorf("check shared groups: %w", err)
	}
	return !shared, nil
}

// Expire implements store.Janitor.
func (s *Store) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	const op = "expire"
	var n int64
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		at := cutoff.UnixNano()
		// The rows are brought up to date before their entries go (see
		// queuecache.go).
		if err := s.qc.flushAll(ctx, tx, s); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if _, err := tx.ExecContext(ctx, `
UPDATE queues SET
	depth = depth + `+unseen+` - (SELECT count(*) FROM entries e WHERE e.qid = queues.qid AND e.enqueued_at < ?1),
	last_seq = last_seq + `+unseen+`
WHERE qid IN (SELECT qid FROM entries WHERE enqueued_at < ?1)`, at); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE enqueued_at < ?`, at)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// DiskUsage implements store.Janitor: the pages of the database file in
// use (free pages are reused before the file grows).
func (s *Store) DiskUsage(ctx context.Context) (int64, error) {
	const op = "disk usage"
	var used int64
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `
SELECT (p.page_count - f.freelist_count) * z.page_size
FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() z`).Scan(&used); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	return used, err
}

// LastResortKeyPackage implements store.Janitor.
func (s *Store) LastResortKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	const op = "last-resort key package"
	if err := store.CheckKey("identity", identity); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var pkg []byte
	err := s.read(ctx, op, func(tx *sql.Tx) (err error) {
		if pkg, err = lastResort(ctx, tx, identity); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	return pkg, err
}
