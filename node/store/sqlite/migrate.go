package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrSchemaTooNew is returned by Open for a database whose schema version is
// newer than the migrations this program knows: it was written by a newer
// version and must not be touched by this one.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this program")

// migrations is the ordered list of schema changes. migrations[i] moves the
// database from version i to version i+1 (the version lives in PRAGMA
// user_version). Append only: never edit or reorder a released entry.
var migrations = []string{
	// 1: KeyPackage directory, queues, deduplication.
	`
CREATE TABLE key_packages (
	id          INTEGER PRIMARY KEY,
	identity    BLOB    NOT NULL CHECK (length(identity) = 32),
	fingerprint BLOB    NOT NULL CHECK (length(fingerprint) = 32),
	package     BLOB    NOT NULL,
	last_resort INTEGER NOT NULL CHECK (last_resort IN (0, 1)),
	created_at  INTEGER NOT NULL,
	UNIQUE (identity, fingerprint)
);
CREATE INDEX key_packages_take ON key_packages (identity, last_resort, id);
CREATE UNIQUE INDEX key_packages_one_last_resort ON key_packages (identity) WHERE last_resort = 1;

-- One row per recipient that ever had a message: last_seq only grows, so a
-- sequence number is never reused even when the queue is empty.
CREATE TABLE queues (
	recipient BLOB    PRIMARY KEY CHECK (length(recipient) = 32),
	last_seq  INTEGER NOT NULL,
	depth     INTEGER NOT NULL CHECK (depth >= 0)
) WITHOUT ROWID;

CREATE TABLE messages (
	id            INTEGER PRIMARY KEY,
	recipient     BLOB    NOT NULL REFERENCES queues (recipient),
	seq           INTEGER NOT NULL,
	sender        BLOB    NOT NULL,
	client_msg_id BLOB    NOT NULL,
	payload       BLOB    NOT NULL,
	enqueued_at   INTEGER NOT NULL,
	UNIQUE (recipient, seq)
);

-- Remembers every deduplicated enqueue for DedupRetention, after the message
-- itself is gone.
CREATE TABLE enqueue_dedup (
	recipient     BLOB    NOT NULL,
	sender        BLOB    NOT NULL,
	client_msg_id BLOB    NOT NULL,
	seq           INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (recipient, sender, client_msg_id)
) WITHOUT ROWID;
CREATE INDEX enqueue_dedup_age ON enqueue_dedup (created_at);
`,
	// 2: groups: one commit per epoch, per-group sequence, deduplication.
	`
CREATE TABLE groups (
	group_id   BLOB    PRIMARY KEY CHECK (length(group_id) BETWEEN 1 AND 255),
	epoch      INTEGER CHECK (epoch >= 0), -- the epoch the next commit must name; NULL until the first commit
	last_seq   INTEGER NOT NULL,           -- the last per-group sequence number handed out
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Remembers every deduplicated commit and application message for
-- DedupRetention: kind 1 is a commit (epoch is the epoch it was accepted at),
-- kind 2 an application message. digest is SHA-256 of the submitted bytes.
CREATE TABLE group_dedup (
	group_id      BLOB    NOT NULL,
	sender        BLOB    NOT NULL,
	client_msg_id BLOB    NOT NULL,
	kind          INTEGER NOT NULL CHECK (kind IN (1, 2)),
	digest        BLOB    NOT NULL,
	epoch         INTEGER NOT NULL,
	group_seq     INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (group_id, sender, client_msg_id)
) WITHOUT ROWID;
CREATE INDEX group_dedup_age ON group_dedup (created_at);
`,
	// 3: a fanned-out payload is stored once and shared by the recipients'
	// messages (payload_ref set, payload empty); the last delete frees it.
	`
CREATE TABLE payloads (
	id   INTEGER PRIMARY KEY,
	data BLOB    NOT NULL,
	refs INTEGER NOT NULL CHECK (refs >= 0)
);
ALTER TABLE messages ADD COLUMN payload_ref INTEGER REFERENCES payloads (id);
CREATE INDEX messages_payload_ref ON messages (payload_ref) WHERE payload_ref IS NOT NULL;
CREATE TRIGGER messages_release_payload AFTER DELETE ON messages
WHEN old.payload_ref IS NOT NULL
BEGIN
	UPDATE payloads SET refs = refs - 1 WHERE id = old.payload_ref;
	DELETE FROM payloads WHERE id = old.payload_ref AND refs = 0;
END;
`,
	// 4: group rosters: who may commit to or fan out in a group. A group
	// committed before this version has no known roster (roster_known 0)
	// until its next commit.
	`
ALTER TABLE groups ADD COLUMN roster_known INTEGER NOT NULL DEFAULT 0 CHECK (roster_known IN (0, 1));
CREATE TABLE group_members (
	group_id BLOB NOT NULL,
	identity BLOB NOT NULL CHECK (length(identity) = 32),
	PRIMARY KEY (group_id, identity)
) WITHOUT ROWID;
`,
	// 5: registration, quotas and expiry (see registration.go, quota.go).
	migrationRegistrationQuota,
	// 6: the node follows each group's public state: view is the encoded
	// public view (NULL for a group from before this version, which takes
	// no more commits or messages), creator the identity that claimed the
	// id; the roster comes from the view. sequenced marks the messages
	// stored by a commit or fan-out, as opposed to a direct enqueue.
	`
ALTER TABLE groups ADD COLUMN view BLOB;
ALTER TABLE groups ADD COLUMN creator BLOB;
ALTER TABLE messages ADD COLUMN sequenced INTEGER NOT NULL DEFAULT 0 CHECK (sequenced IN (0, 1));
`,
	// 7: group_seq is a sequenced message's per-group sequence number (0
	// for a direct enqueue, and for messages stored before this version).
	`
ALTER TABLE messages ADD COLUMN group_seq INTEGER NOT NULL DEFAULT 0 CHECK (group_seq >= 0);
`,
	// 8: blobs (attachments' ciphertext, see blob.go): metadata, and the
	// chunks when the node keeps them itself.
	`
CREATE TABLE blobs (
	id         BLOB    PRIMARY KEY CHECK (length(id) = 16),
	group_id   BLOB    NOT NULL,
	owner      BLOB    NOT NULL CHECK (length(owner) = 32),
	size       INTEGER NOT NULL CHECK (size >= 0),
	written    INTEGER NOT NULL CHECK (written >= 0),
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX blobs_owner ON blobs (owner);
CREATE INDEX blobs_age ON blobs (created_at);
CREATE TABLE blob_chunks (
	blob_id BLOB    NOT NULL,
	idx     INTEGER NOT NULL CHECK (idx >= 0),
	data    BLOB    NOT NULL,
	PRIMARY KEY (blob_id, idx)
);
`,
	// 9: devices: signed device lists, revoked devices, link slots (see
	// devices.go).
	migrationDevices,
	// 10: revoked devices counted per user (devices.go RevokedCount).
	`CREATE INDEX revoked_devices_user ON revoked_devices (user_key);`,
	// 11: a message body is stored once, each recipient holds a small
	// entry pointing at it (see queuerows.go).
	migrationQueueRows,
	// 12: queues get an integer id, which keys the entries (see
	// queueids.go).
	migrationQueueIDs,
}

// pruneStatements delete expired deduplication entries; each takes the cutoff
// (unix nanoseconds) as its only argument.
var pruneStatements = []string{
	`DELETE FROM enqueue_dedup WHERE created_at < ?`,
	`DELETE FROM group_dedup WHERE created_at < ?`,
	`DELETE FROM registration_tokens WHERE expires_at < ?`,
}

// migrate brings the database to the newest schema version, all pending steps
// in one transaction, and returns the resulting version.
func migrate(ctx context.Context, db *sql.DB) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	if version > len(migrations) {
		return 0, fmt.Errorf("%w: database is at version %d, this program knows up to %d", ErrSchemaTooNew, version, len(migrations))
	}
	if version < 0 {
		return 0, fmt.Errorf("migrate: schema version %d is invalid", version)
	}
	if version == len(migrations) {
		return version, nil
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return 0, fmt.Errorf("migrate: to version %d: %w", v+1, err)
		}
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return 0, fmt.Errorf("migrate: set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return len(migrations), nil
}
