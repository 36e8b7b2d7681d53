package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// migrationRegistrationQuota is schema version 5: registered identities,
// registration tokens (by hash), strangers' share of each queue and the
// index that expiry deletes by. Identities that already have KeyPackages
// when a node upgrades stay registered.
const migrationRegistrationQuota = `
CREATE TABLE registrations (
	identity      BLOB    PRIMARY KEY CHECK (length(identity) = 32),
	registered_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO registrations (identity, registered_at)
SELECT DISTINCT identity, min(created_at) FROM key_packages GROUP BY identity;

CREATE TABLE registration_tokens (
	hash       BLOB    PRIMARY KEY CHECK (length(hash) = 32),
	uses_left  INTEGER NOT NULL CHECK (uses_left >= 0),
	expires_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Direct messages from senders sharing no group with the recipient.
ALTER TABLE queues ADD COLUMN stranger_count INTEGER NOT NULL DEFAULT 0 CHECK (stranger_count >= 0);
ALTER TABLE queues ADD COLUMN stranger_bytes INTEGER NOT NULL DEFAULT 0 CHECK (stranger_bytes >= 0);
ALTER TABLE messages ADD COLUMN stranger INTEGER NOT NULL DEFAULT 0 CHECK (stranger IN (0, 1));
CREATE TRIGGER messages_release_stranger AFTER DELETE ON messages
WHEN old.stranger = 1
BEGIN
	UPDATE queues SET stranger_count = stranger_count - 1, stranger_bytes = stranger_bytes - length(old.payload)
	WHERE recipient = old.recipient;
END;
CREATE INDEX messages_age ON messages (enqueued_at);
CREATE INDEX group_members_identity ON group_members (identity, group_id);
`

// CreateToken implements store.Registry.
func (s *Store) CreateToken(ctx context.Context, hash [32]byte, uses int, expires time.Time) error {
	const op = "create token"
	if err := store.CheckTokenUses(uses); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO registration_tokens (hash, uses_left, expires_at, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (hash) DO NOTHING`, hash[:], uses, expires.UnixNano(), s.now().UnixNano())
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: %s: a token with that hash exists: %w", op, store.ErrInvalid)
		}
		return nil
	})
}

// RedeemToken implements store.Registry.
func (s *Store) RedeemToken(ctx context.Context, identity []byte, hash [32]byte) error {
	const op = "redeem token"
	if err := store.CheckKey("identity", identity); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		known, err := registeredTx(ctx, tx, identity)
		if err != nil || known {
			return err
		}
		now := s.now().UnixNano()
		var left int
		err = tx.QueryRowContext(ctx, `
UPDATE registration_tokens SET uses_left = uses_left - 1
WHERE hash = ? AND uses_left > 0 AND expires_at > ? RETURNING uses_left`, hash[:], now).Scan(&left)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: %w", op, store.ErrBadToken)
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return register(ctx, tx, identity, now)
	})
}

// Register implements store.Registry.
func (s *Store) Register(ctx context.Context, identity []byte) error {
	const op = "register"
	if err := store.CheckKey("identity", identity); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		return register(ctx, tx, identity, s.now().UnixNano())
	})
}

func register(ctx context.Context, tx *sql.Tx, identity []byte, now int64) error {
	if _, err := tx.ExecContext(ctx, `
INSERT INTO registrations (identity, registered_at) VALUES (?, ?) ON CONFLICT (identity) DO NOTHING`,
		identity, now); err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	return nil
}

// Registered implements store.Registry.
func (s *Store) Registered(ctx context.Context, identity []byte) (bool, error) {
	const op = "registered"
	if err := store.CheckKey("identity", identity); err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var known bool
	err := s.read(ctx, op, func(tx *sql.Tx) (err error) {
		known, err = registeredTx(ctx, tx, identity)
		return err
	})
	return known, err
}

func registeredTx(ctx context.Context, tx *sql.Tx, identity []byte) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM registrations WHERE identity = ?`, identity).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: read registration: %w", err)
	}
	return true, nil
}
