package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/node/store"
)

// PutKeyPackage implements store.Store. A consumable package beyond
// Limits.MaxKeyPackages is refused with store.ErrLimit. Storing bytes that are
// already stored is not an error; the latest call decides whether they are
// the last-resort package.
func (s *Store) PutKeyPackage(ctx context.Context, identity, pkg []byte, lastResort bool) ([32]byte, error) {
	const op = "put key package"
	if err := store.CheckKey("identity", identity); err != nil {
		return [32]byte{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if len(pkg) == 0 {
		return [32]byte{}, fmt.Errorf("sqlite: %s: empty package: %w", op, store.ErrInvalid)
	}
	fp := sha256.Sum256(pkg)
	lr := 0
	if lastResort {
		lr = 1
	}
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var existing int
		err := tx.QueryRowContext(ctx,
			`SELECT last_resort FROM key_packages WHERE identity = ? AND fingerprint = ?`,
			identity, fp[:]).Scan(&existing)
		switch {
		case err == nil && existing == lr:
			return nil // already stored as asked
		case err == nil:
			// Same bytes, other kind: drop the old row and store it afresh below.
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM key_packages WHERE identity = ? AND fingerprint = ?`, identity, fp[:]); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if lastResort {
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM key_packages WHERE identity = ? AND last_resort = 1`, identity); err != nil {
				return fmt.Errorf("sqlite: %s: replace last resort: %w", op, err)
			}
		} else {
			var n int
			if err := tx.QueryRowContext(ctx,
				`SELECT count(*) FROM key_packages WHERE identity = ? AND last_resort = 0`, identity).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
			if n >= s.limits.MaxKeyPackages {
				return fmt.Errorf("sqlite: %s: identity already holds %d key packages (limit %d): %w",
					op, n, s.limits.MaxKeyPackages, store.ErrLimit)
			}
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO key_packages (identity, fingerprint, package, last_resort, created_at) VALUES (?, ?, ?, ?, ?)`,
			identity, fp[:], pkg, lr, s.now().UnixNano()); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return [32]byte{}, err
	}
	return fp, nil
}

// TakeKeyPackage implements store.Store. Consumable packages are handed out
// oldest first; the delete and the read are one statement in a write
// transaction, so concurrent takers never share a package.
func (s *Store) TakeKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	const op = "take key package"
	if err := store.CheckKey("identity", identity); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var pkg []byte
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
DELETE FROM key_packages WHERE id = (
	SELECT id FROM key_packages WHERE identity = ? AND last_resort = 0 ORDER BY id LIMIT 1
) RETURNING package`, identity).Scan(&pkg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		pkg, err = lastResort(ctx, tx, identity)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pkg, nil
}

// lastResort reads identity's last-resort package, or store.ErrNoKeyPackage.
func lastResort(ctx context.Context, tx *sql.Tx, identity []byte) ([]byte, error) {
	var pkg []byte
	err := tx.QueryRowContext(ctx,
		`SELECT package FROM key_packages WHERE identity = ? AND last_resort = 1`, identity).Scan(&pkg)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNoKeyPackage
	}
	return pkg, err
}

// CountKeyPackages implements store.Store.
func (s *Store) CountKeyPackages(ctx context.Context, identity []byte) (store.KeyPackageCount, error) {
	const op = "count key packages"
	if err := store.CheckKey("identity", identity); err != nil {
		return store.KeyPackageCount{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var c store.KeyPackageCount
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		var lr int
		if err := tx.QueryRowContext(ctx, `
SELECT coalesce(sum(last_resort = 0), 0), coalesce(max(last_resort), 0)
FROM key_packages WHERE identity = ?`, identity).Scan(&c.Remaining, &lr); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		c.LastResort = lr == 1
		return nil
	})
	return c, err
}
