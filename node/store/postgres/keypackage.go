package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// identityLock is the key of the advisory lock that serialises the
// PutKeyPackage calls of one identity (so that its limit holds under
// concurrency). Two identities sharing a key only wait for each other.
func identityLock(identity []byte) int64 {
	h := sha256.Sum256(append([]byte("qpq key packages "), identity...))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// PutKeyPackage implements store.Store. A consumable package beyond
// Limits.MaxKeyPackages is refused with store.ErrLimit. Storing bytes that
// are already stored is not an error; the latest call decides whether they
// are the last-resort package.
func (s *Store) PutKeyPackage(ctx context.Context, identity, pkg []byte, lastResort bool) ([32]byte, error) {
	const op = "put key package"
	if err := store.CheckKey("identity", identity); err != nil {
		return [32]byte{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	if len(pkg) == 0 {
		return [32]byte{}, fmt.Errorf("postgres: %s: empty package: %w", op, store.ErrInvalid)
	}
	fp := sha256.Sum256(pkg)
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, identityLock(identity)); err != nil {
			return fmt.Errorf("postgres: %s: lock identity: %w", op, err)
		}
		var existing bool
		err := tx.QueryRow(ctx,
			`SELECT last_resort FROM key_packages WHERE identity = $1 AND fingerprint = $2`,
			identity, fp[:]).Scan(&existing)
		switch {
		case err == nil && existing == lastResort:
			return errRollback // already stored as asked
		case err == nil:
			// Same bytes, other kind: drop the old row and store it afresh below.
			if _, err := tx.Exec(ctx,
				`DELETE FROM key_packages WHERE identity = $1 AND fingerprint = $2`, identity, fp[:]); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if lastResort {
			if _, err := tx.Exec(ctx,
				`DELETE FROM key_packages WHERE identity = $1 AND last_resort`, identity); err != nil {
				return fmt.Errorf("postgres: %s: replace last resort: %w", op, err)
			}
		} else {
			var n int
			if err := tx.QueryRow(ctx,
				`SELECT count(*) FROM key_packages WHERE identity = $1 AND NOT last_resort`, identity).Scan(&n); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			if n >= s.limits.MaxKeyPackages {
				return fmt.Errorf("postgres: %s: identity already holds %d key packages (limit %d): %w",
					op, n, s.limits.MaxKeyPackages, store.ErrLimit)
			}
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO key_packages (identity, fingerprint, package, last_resort, created_at) VALUES ($1, $2, $3, $4, $5)`,
			identity, fp[:], pkg, lastResort, s.now()); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return [32]byte{}, err
	}
	return fp, nil
}

// TakeKeyPackage implements store.Store. Consumable packages are handed out
// oldest first. A taker locks the package it deletes and skips packages
// other takers have locked (FOR UPDATE SKIP LOCKED), so concurrent takers
// never share a package nor wait for each other; one that finds every
// remaining package locked by others gets the last-resort package.
func (s *Store) TakeKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	const op = "take key package"
	if err := store.CheckKey("identity", identity); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var pkg []byte
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		pkg = nil
		err := tx.QueryRow(ctx, `
DELETE FROM key_packages WHERE id = (
	SELECT id FROM key_packages WHERE identity = $1 AND NOT last_resort
	ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
) RETURNING package`, identity).Scan(&pkg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if pkg, err = lastResort(ctx, tx, identity); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return errRollback // nothing was changed
	})
	if err != nil {
		return nil, err
	}
	return pkg, nil
}

// CountKeyPackages implements store.Store.
func (s *Store) CountKeyPackages(ctx context.Context, identity []byte) (store.KeyPackageCount, error) {
	const op = "count key packages"
	if err := store.CheckKey("identity", identity); err != nil {
		return store.KeyPackageCount{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var c store.KeyPackageCount
	err := s.read(ctx, op, func(ctx context.Context) error {
		if err := s.pool.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE NOT last_resort), coalesce(bool_or(last_resort), false)
FROM key_packages WHERE identity = $1`, identity).Scan(&c.Remaining, &c.LastResort); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return c, err
}

// rowQuerier is what lastResort needs of a transaction or the pool.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// lastResort reads identity's last-resort package, or store.ErrNoKeyPackage.
func lastResort(ctx context.Context, q rowQuerier, identity []byte) ([]byte, error) {
	var pkg []byte
	err := q.QueryRow(ctx,
		`SELECT package FROM key_packages WHERE identity = $1 AND last_resort`, identity).Scan(&pkg)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNoKeyPackage
	}
	return pkg, err
}
