package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// migrationRegistrationQuota is schema version 2: registered identities,
// registration tokens (by hash), strangers' share of each queue and the
// index that expiry deletes by. Identities that already have KeyPackages
// when the nodes upgrade stay registered.
const migrationRegistrationQuota = `
CREATE TABLE registrations (
	identity      bytea       PRIMARY KEY CHECK (length(identity) = 32),
	registered_at timestamptz NOT NULL
);
INSERT INTO registrations (identity, registered_at)
SELECT identity, min(created_at) FROM key_packages GROUP BY identity;

CREATE TABLE registration_tokens (
	hash       bytea       PRIMARY KEY CHECK (length(hash) = 32),
	uses_left  integer     NOT NULL CHECK (uses_left >= 0),
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL
);

-- Direct messages from senders sharing no group with the recipient.
ALTER TABLE queues ADD COLUMN stranger_count bigint NOT NULL DEFAULT 0 CHECK (stranger_count >= 0);
ALTER TABLE queues ADD COLUMN stranger_bytes bigint NOT NULL DEFAULT 0 CHECK (stranger_bytes >= 0);
ALTER TABLE messages ADD COLUMN stranger boolean NOT NULL DEFAULT false;
CREATE FUNCTION messages_release_strangers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE queues q SET stranger_count = q.stranger_count - g.n, stranger_bytes = q.stranger_bytes - g.b
	FROM (SELECT recipient, count(*) AS n, sum(length(payload)) AS b FROM gone WHERE stranger GROUP BY recipient) g
	WHERE q.recipient = g.recipient;
	RETURN NULL;
END
$$;
CREATE TRIGGER messages_release_strangers AFTER DELETE ON messages
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION messages_release_strangers();
CREATE INDEX messages_age ON messages (enqueued_at);
CREATE INDEX group_members_identity ON group_members (identity, group_id);
`

// CreateToken implements store.Registry.
func (s *Store) CreateToken(ctx context.Context, hash [32]byte, uses int, expires time.Time) error {
	const op = "create token"
	if err := store.CheckTokenUses(uses); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
INSERT INTO registration_tokens (hash, uses_left, expires_at, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (hash) DO NOTHING`, hash[:], uses, expires, s.now())
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s: a token with that hash exists: %w", op, store.ErrInvalid)
		}
		return nil
	})
}

// RedeemToken implements store.Registry. The token's row lock serialises
// concurrent redemptions, so its uses are never overspent.
func (s *Store) RedeemToken(ctx context.Context, identity []byte, hash [32]byte) error {
	const op = "redeem token"
	if err := store.CheckKey("identity", identity); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		var known bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM registrations WHERE identity = $1)`, identity).Scan(&known); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if known {
			return errRollback
		}
		now := s.now()
		var left int
		err := tx.QueryRow(ctx, `
UPDATE registration_tokens SET uses_left = uses_left - 1
WHERE hash = $1 AND uses_left > 0 AND expires_at > $2 RETURNING uses_left`, hash[:], now).Scan(&left)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: %s: %w", op, store.ErrBadToken)
		}
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return register(ctx, tx, identity, now)
	})
}

// Register implements store.Registry.
func (s *Store) Register(ctx context.Context, identity []byte) error {
	const op = "register"
	if err := store.CheckKey("identity", identity); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		return register(ctx, tx, identity, s.now())
	})
}

func register(ctx context.Context, tx pgx.Tx, identity []byte, now time.Time) error {
	if _, err := tx.Exec(ctx, `
INSERT INTO registrations (identity, registered_at) VALUES ($1, $2) ON CONFLICT (identity) DO NOTHING`,
		identity, now); err != nil {
		return fmt.Errorf("postgres: register: %w", err)
	}
	return nil
}

// Registered implements store.Registry.
func (s *Store) Registered(ctx context.Context, identity []byte) (bool, error) {
	const op = "registered"
	if err := store.CheckKey("identity", identity); err != nil {
		return false, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var known bool
	err := s.read(ctx, op, func(ctx context.Context) error {
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM registrations WHERE identity = $1)`, identity).Scan(&known); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return known, err
}
