package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// blobQuotaLock serialises the quota check of CreateBlob across nodes
// (a transaction-scoped advisory lock), so that two uploads cannot both
// take the last room.
const blobQuotaLock = 0x71707100_626c6f62 // "qpq\0blob"

// CreateBlob implements store.Blobs.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, limits store.BlobLimits) error {
	const op = "create blob"
	if err := store.CheckBlob(&b); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(blobQuotaLock)); err != nil {
			return fmt.Errorf("postgres: %s: lock: %w", op, err)
		}
		var owner, total int64
		if err := tx.QueryRow(ctx, `
SELECT coalesce(sum(size) FILTER (WHERE owner = $1), 0)::bigint, coalesce(sum(size), 0)::bigint FROM blobs`, b.Owner).Scan(&owner, &total); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if err := limits.CheckBlobRoom(b.Size, owner, total); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO blobs (id, group_id, owner, size, written, created_at) VALUES ($1, $2, $3, $4, 0, $5)`,
			b.ID, b.Group, b.Owner, int64(b.Size), s.now()); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
}

// GetBlob implements store.Blobs.
func (s *Store) GetBlob(ctx context.Context, id []byte) (store.Blob, error) {
	const op = "get blob"
	if err := store.CheckBlobID(id); err != nil {
		return store.Blob{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	b := store.Blob{ID: id}
	err := s.read(ctx, op, func(ctx context.Context) error {
		var size, written int64
		err := s.pool.QueryRow(ctx, `SELECT group_id, owner, size, written, created_at FROM blobs WHERE id = $1`, id).
			Scan(&b.Group, &b.Owner, &size, &written, &b.CreatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("postgres: %s %x: %w", op, id, store.ErrNoBlob)
		case err != nil:
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		b.Size, b.Written = uint64(size), uint32(written)
		return nil
	})
	return b, err
}

// AdvanceBlob implements store.Blobs.
func (s *Store) AdvanceBlob(ctx context.Context, id []byte, index uint32) error {
	const op = "advance blob"
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		var written int64
		err := tx.QueryRow(ctx, `SELECT written FROM blobs WHERE id = $1 FOR UPDATE`, id).Scan(&written)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("postgres: %s %x: %w", op, id, store.ErrNoBlob)
		case err != nil:
			return fmt.Errorf("postgres: %s: %w", op, err)
		case written > int64(index):
			return nil
		case written < int64(index):
			return fmt.Errorf("postgres: %s: chunk %d before chunk %d: %w", op, index, written, store.ErrInvalid)
		}
		if _, err := tx.Exec(ctx, `UPDATE blobs SET written = $1 WHERE id = $2`, int64(index)+1, id); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
}

// ExpireBlobs implements store.Blobs.
func (s *Store) ExpireBlobs(ctx context.Context, cutoff time.Time) ([][]byte, error) {
	const op = "expire blobs"
	var ids [][]byte
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		ids = nil
		rows, err := tx.Query(ctx, `DELETE FROM blobs WHERE created_at < $1 RETURNING id`, cutoff)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[[]byte]); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM blob_chunks WHERE blob_id = ANY($1)`, ids); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return ids, err
}

// PutBlobChunk implements store.BlobChunks.
func (s *Store) PutBlobChunk(ctx context.Context, id []byte, index uint32, data []byte) error {
	const op = "put blob chunk"
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if data == nil {
		data = []byte{}
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
INSERT INTO blob_chunks (blob_id, idx, data) VALUES ($1, $2, $3)
ON CONFLICT (blob_id, idx) DO UPDATE SET data = excluded.data`, id, int64(index), data); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
}

// BlobChunk implements store.BlobChunks.
func (s *Store) BlobChunk(ctx context.Context, id []byte, index uint32) ([]byte, error) {
	const op = "blob chunk"
	if err := store.CheckBlobID(id); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var data []byte
	err := s.read(ctx, op, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, `SELECT data FROM blob_chunks WHERE blob_id = $1 AND idx = $2`, id, int64(index)).Scan(&data)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("postgres: %s %x/%d: %w", op, id, index, store.ErrNoBlob)
		case err != nil:
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return data, err
}

// DeleteBlobChunks implements store.BlobChunks.
func (s *Store) DeleteBlobChunks(ctx context.Context, id []byte) error {
	const op = "delete blob chunks"
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM blob_chunks WHERE blob_id = $1`, id); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
}
