package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// CreateBlob implements store.Blobs.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, limits store.BlobLimits) error {
	const op = "create blob"
	if err := store.CheckBlob(&b); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var owner, total int64
		if err := tx.QueryRowContext(ctx, `
SELECT coalesce(sum(CASE WHEN owner = ? THEN size END), 0), coalesce(sum(size), 0) FROM blobs`, b.Owner).Scan(&owner, &total); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if err := limits.CheckBlobRoom(b.Size, owner, total); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO blobs (id, group_id, owner, size, written, created_at) VALUES (?, ?, ?, ?, 0, ?)`,
			b.ID, b.Group, b.Owner, int64(b.Size), s.now().UnixNano()); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
}

// GetBlob implements store.Blobs.
func (s *Store) GetBlob(ctx context.Context, id []byte) (store.Blob, error) {
	const op = "get blob"
	if err := store.CheckBlobID(id); err != nil {
		return store.Blob{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	b := store.Blob{ID: id}
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		var size, written, at int64
		err := tx.QueryRowContext(ctx, `SELECT group_id, owner, size, written, created_at FROM blobs WHERE id = ?`, id).
			Scan(&b.Group, &b.Owner, &size, &written, &at)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: %s %x: %w", op, id, store.ErrNoBlob)
		case err != nil:
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		b.Size, b.Written, b.CreatedAt = uint64(size), uint32(written), time.Unix(0, at)
		return nil
	})
	return b, err
}

// AdvanceBlob implements store.Blobs.
func (s *Store) AdvanceBlob(ctx context.Context, id []byte, index uint32) error {
	const op = "advance blob"
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var written int64
		err := tx.QueryRowContext(ctx, `SELECT written FROM blobs WHERE id = ?`, id).Scan(&written)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: %s %x: %w", op, id, store.ErrNoBlob)
		case err != nil:
			return fmt.Errorf("sqlite: %s: %w", op, err)
		case written > int64(index):
			return nil
		case written < int64(index):
			return fmt.Errorf("sqlite: %s: chunk %d before chunk %d: %w", op, index, written, store.ErrInvalid)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE blobs SET written = ? WHERE id = ?`, int64(index)+1, id); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
}

// ExpireBlobs implements store.Blobs.
func (s *Store) ExpireBlobs(ctx context.Context, cutoff time.Time) ([][]byte, error) {
	const op = "expire blobs"
	var ids [][]byte
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		ids = nil
		rows, err := tx.QueryContext(ctx, `DELETE FROM blobs WHERE created_at < ? RETURNING id`, cutoff.UnixNano())
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM blob_chunks WHERE blob_id = ?`, id); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
		}
		return nil
	})
	return ids, err
}

// PutBlobChunk implements store.BlobChunks.
func (s *Store) PutBlobChunk(ctx context.Context, id []byte, index uint32, data []byte) error {
	const op = "put blob chunk"
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO blob_chunks (blob_id, idx, data) VALUES (?, ?, ?)`,
			id, int64(index), nonNilBytes(data)); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
}

// BlobChunk implements store.BlobChunks.
func (s *Store) BlobChunk(ctx context.Context, id []byte, index uint32) ([]byte, error) {
	const op = "blob chunk"
	if err := store.CheckBlobID(id); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var data []byte
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT data FROM blob_chunks WHERE blob_id = ? AND idx = ?`, id, int64(index)).Scan(&data)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: %s %x/%d: %w", op, id, index, store.ErrNoBlob)
		case err != nil:
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	return data, err
}

// DeleteBlobChunks implements store.BlobChunks.
func (s *Store) DeleteBlobChunks(ctx context.Context, id []byte) error {
	const op = "delete blob chunks"
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM blob_chunks WHERE blob_id = ?`, id); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
