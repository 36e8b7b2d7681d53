package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSchemaTooNew is returned by Open for a database whose schema version is
// newer than the migrations this program knows: it was migrated by a newer
// version and must not be touched by this one.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this program")

// migrationLock is the key of the transaction-level advisory lock that
// serialises migrations of one database: nodes starting together migrate
// one after the other, and the later ones find nothing left to do.
const migrationLock = 0x71707100_6d696772 // "qpq\0migr"

// migrations is the ordered list of schema changes. migrations[i] moves the
// database from version i to version i+1 (the version lives in the
// schema_version table). Append only: never edit or reorder a released
// entry.
var migrations = []string{
	// 1: KeyPackage directory, queues with shared payloads, groups with
	// rosters, deduplication.
	`
CREATE TABLE key_packages (
	id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	identity    bytea       NOT NULL CHECK (length(identity) = 32),
	fingerprint bytea       NOT NULL CHECK (length(fingerprint) = 32),
	package     bytea       NOT NULL,
	last_resort boolean     NOT NULL,
	created_at  timestamptz NOT NULL,
	UNIQUE (identity, fingerprint)
);
CREATE INDEX key_packages_take ON key_packages (identity, id) WHERE NOT last_resort;
CREATE UNIQUE INDEX key_packages_one_last_resort ON key_packages (identity) WHERE last_resort;

-- One row per recipient that ever had a message: last_seq only grows, so a
-- sequence number is never reused even when the queue is empty. Writers of
-- a queue lock its row, so its messages commit in sequence order.
CREATE TABLE queues (
	recipient bytea  PRIMARY KEY CHECK (length(recipient) = 32),
	last_seq  bigint NOT NULL CHECK (last_seq >= 0),
	depth     bigint NOT NULL CHECK (depth >= 0)
);

-- A payload fanned out to several recipients, stored once; refs counts the
-- messages pointing at it.
CREATE TABLE payloads (
	id   bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	data bytea   NOT NULL,
	refs integer NOT NULL CHECK (refs >= 0)
);

CREATE TABLE messages (
	recipient     bytea       NOT NULL REFERENCES queues (recipient),
	seq           bigint      NOT NULL,
	sender        bytea       NOT NULL,
	client_msg_id bytea       NOT NULL,
	payload       bytea       NOT NULL, -- empty when payload_ref is set
	payload_ref   bigint      REFERENCES payloads (id),
	enqueued_at   timestamptz NOT NULL,
	PRIMARY KEY (recipient, seq)
);
CREATE INDEX messages_payload_ref ON messages (payload_ref) WHERE payload_ref IS NOT NULL;

-- Deleting messages releases their shared payloads; the last reference
-- frees one. Payload rows are locked in id order, so concurrent
-- acknowledgements of one fan-out never deadlock.
CREATE FUNCTION messages_release_payloads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM payloads
	WHERE id IN (SELECT payload_ref FROM gone WHERE payload_ref IS NOT NULL)
	ORDER BY id FOR UPDATE;
	UPDATE payloads p SET refs = p.refs - g.n
	FROM (SELECT payload_ref, count(*) AS n FROM gone WHERE payload_ref IS NOT NULL GROUP BY payload_ref) g
	WHERE p.id = g.payload_ref;
	DELETE FROM payloads
	WHERE refs = 0 AND id IN (SELECT payload_ref FROM gone WHERE payload_ref IS NOT NULL);
	RETURN NULL;
END
$$;
CREATE TRIGGER messages_release_payloads AFTER DELETE ON messages
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION messages_release_payloads();

-- Remembers every deduplicated enqueue for DedupRetention, after the
-- message itself is gone.
CREATE TABLE enqueue_dedup (
	recipient     bytea       NOT NULL,
	sender        bytea       NOT NULL,
	client_msg_id bytea       NOT NULL,
	seq           bigint      NOT NULL,
	created_at    timestamptz NOT NULL,
	PRIMARY KEY (recipient, sender, client_msg_id)
);
CREATE INDEX enqueue_dedup_age ON enqueue_dedup (created_at);

-- One row per group: epoch is the epoch the next commit must name (NULL
-- until the first commit), last_seq the last per-group sequence number
-- handed out. Every commit and fan-out locks the row.
CREATE TABLE groups (
	group_id   bytea       PRIMARY KEY CHECK (length(group_id) BETWEEN 1 AND 255),
	epoch      bigint      CHECK (epoch >= 0),
	last_seq   bigint      NOT NULL CHECK (last_seq >= 0),
	created_at timestamptz NOT NULL
);

-- The roster of each group's last accepted commit.
CREATE TABLE group_members (
	group_id bytea NOT NULL REFERENCES groups (group_id),
	identity bytea NOT NULL CHECK (length(identity) = 32),
	PRIMARY KEY (group_id, identity)
);

-- Remembers every deduplicated commit (kind 1; epoch is the epoch it was
-- accepted at) and application message (kind 2) for DedupRetention.
-- digest is SHA-256 of the submitted bytes.
CREATE TABLE group_dedup (
	group_id      bytea       NOT NULL,
	sender        bytea       NOT NULL,
	client_msg_id bytea       NOT NULL,
	kind          smallint    NOT NULL CHECK (kind IN (1, 2)),
	digest        bytea       NOT NULL,
	epoch         bigint      NOT NULL,
	group_seq     bigint      NOT NULL,
	created_at    timestamptz NOT NULL,
	PRIMARY KEY (group_id, sender, client_msg_id)
);
CREATE INDEX group_dedup_age ON group_dedup (created_at);
`,
	// 2: registration, quotas and expiry (see registration.go, quota.go).
	migrationRegistrationQuota,
	// 3: the node follows each group's public state: view is the encoded
	// public view (NULL for a group from before this version, which takes
	// no more commits or messages), creator the identity that claimed the
	// id; the roster comes from the view. sequenced marks the messages
	// stored by a commit or fan-out, as opposed to a direct enqueue.
	`
ALTER TABLE groups ADD COLUMN view bytea;
ALTER TABLE groups ADD COLUMN creator bytea;
ALTER TABLE messages ADD COLUMN sequenced boolean NOT NULL DEFAULT false;
`,
	// 4: group_seq is a sequenced message's per-group sequence number (0
	// for a direct enqueue, and for messages stored before this version).
	`
ALTER TABLE messages ADD COLUMN group_seq bigint NOT NULL DEFAULT 0 CHECK (group_seq >= 0);
`,
	// 5: blobs (attachments' ciphertext, see blob.go): metadata, and the
	// chunks when the node keeps them itself.
	`
CREATE TABLE blobs (
	id         bytea       PRIMARY KEY CHECK (length(id) = 16),
	group_id   bytea       NOT NULL,
	owner      bytea       NOT NULL CHECK (length(owner) = 32),
	size       bigint      NOT NULL CHECK (size >= 0),
	written    bigint      NOT NULL CHECK (written >= 0),
	created_at timestamptz NOT NULL
);
CREATE INDEX blobs_owner ON blobs (owner);
CREATE INDEX blobs_age ON blobs (created_at);
CREATE TABLE blob_chunks (
	blob_id bytea  NOT NULL,
	idx     bigint NOT NULL CHECK (idx >= 0),
	data    bytea  NOT NULL,
	PRIMARY KEY (blob_id, idx)
);
`,
	// 6: devices: signed device lists, revoked devices, link slots (see
	// devices.go).
	migrationDevices,
	// 7: revoked devices counted per user (devices.go RevokedCount).
	`CREATE INDEX revoked_devices_user ON revoked_devices (user_key);`,
}

// pruneStatements delete expired deduplication entries; each takes the
// cutoff time as its only argument.
var pruneStatements = []string{
	`DELETE FROM enqueue_dedup WHERE created_at < $1`,
	`DELETE FROM group_dedup WHERE created_at < $1`,
	`DELETE FROM registration_tokens WHERE expires_at < $1`,
}

// migrate brings the database to the newest schema version, all pending
// steps in one transaction, and returns the resulting version.
func migrate(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return 0, fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	version integer NOT NULL CHECK (version >= 0)
)`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_version: %w", err)
	}
	var version int
	err = tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		version = 0
	case err != nil:
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	if version > len(migrations) {
		return 0, fmt.Errorf("%w: database is at version %d, this program knows up to %d", ErrSchemaTooNew, version, len(migrations))
	}
	if version == len(migrations) {
		return version, nil
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return 0, fmt.Errorf("migrate: to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO schema_version (version) VALUES ($1)
ON CONFLICT (one) DO UPDATE SET version = excluded.version`, len(migrations)); err != nil {
		return 0, fmt.Errorf("migrate: set schema version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return len(migrations), nil
}
