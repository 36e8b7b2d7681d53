package store

import (
	"context"
	"fmt"
)

// migrations are applied in order; migrations[i] moves the schema from
// version i to version i+1. Never edit a released step: append a new one.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE identity (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	public_key  BLOB NOT NULL CHECK (length(public_key) = 32),
	seed        BLOB NOT NULL CHECK (length(seed) = 32),
	created_at  INTEGER NOT NULL
);
CREATE TABLE key_packages (
	ref          BLOB PRIMARY KEY,
	key_package  BLOB NOT NULL,
	secrets      BLOB NOT NULL,
	last_resort  INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	uploaded_at  INTEGER NOT NULL DEFAULT 0,
	expires_at   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE groups (
	group_id    BLOB PRIMARY KEY,
	name        TEXT NOT NULL,
	state       BLOB NOT NULL,
	epoch       INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	left_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX groups_name ON groups(name);
CREATE TABLE messages (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id     BLOB NOT NULL REFERENCES groups(group_id),
	seq          INTEGER NOT NULL,
	message_id   BLOB NOT NULL,
	sender       BLOB NOT NULL,
	text         TEXT NOT NULL,
	sent_at      INTEGER NOT NULL,
	received_at  INTEGER NOT NULL,
	read         INTEGER NOT NULL DEFAULT 0,
	outgoing     INTEGER NOT NULL DEFAULT 0,
	UNIQUE (group_id, seq),
	UNIQUE (group_id, message_id)
);
CREATE INDEX messages_unread ON messages(read, group_id, seq);
CREATE TABLE events (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	at           INTEGER NOT NULL,
	kind         TEXT NOT NULL,
	group_id     BLOB,
	message_seq  INTEGER NOT NULL DEFAULT 0,
	member       BLOB,
	by_member    BLOB,
	epoch        INTEGER NOT NULL DEFAULT 0,
	state        TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE outbox (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	kind           TEXT NOT NULL,
	group_id       BLOB,
	client_msg_id  BLOB UNIQUE,
	payload        BLOB NOT NULL,
	recipients     BLOB NOT NULL,
	epoch          INTEGER NOT NULL DEFAULT 0,
	message_seq    INTEGER NOT NULL DEFAULT 0,
	state          TEXT NOT NULL,
	attempts       INTEGER NOT NULL DEFAULT 0,
	last_error     TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
);
CREATE INDEX outbox_state ON outbox(state, id);
CREATE TABLE welcomes (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	payload      BLOB NOT NULL,
	sender       BLOB,
	received_at  INTEGER NOT NULL
);
CREATE TABLE node_state (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	cursor  INTEGER NOT NULL
);
CREATE TABLE pinned_certs (
	address      TEXT PRIMARY KEY,
	cert         BLOB NOT NULL,
	fingerprint  BLOB NOT NULL,
	pinned_at    INTEGER NOT NULL
);
`,
	// 2: group commits carry their Welcome; joins by Welcome are reported
	// once; rejected envelopes are logged as events.
	`
ALTER TABLE outbox ADD COLUMN welcome BLOB NOT NULL DEFAULT x'';
ALTER TABLE outbox ADD COLUMN welcome_recipients BLOB NOT NULL DEFAULT x'';
ALTER TABLE groups ADD COLUMN join_reported INTEGER NOT NULL DEFAULT 1;
`,
	// 3: a pending commit carries the intent it was built from, so that a
	// commit found stale after a restart or reconnect can be built again.
	`
ALTER TABLE outbox ADD COLUMN intent BLOB NOT NULL DEFAULT x'';
`,
	// 4: contacts (and blocked identities); Welcomes from non-contacts
	// wait as requests for consent.
	`
CREATE TABLE contacts (
	identity     BLOB PRIMARY KEY CHECK (length(identity) = 32),
	name         TEXT NOT NULL DEFAULT '',
	added_at     INTEGER NOT NULL,
	verified_at  INTEGER NOT NULL DEFAULT 0,
	blocked      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX contacts_name ON contacts(name) WHERE name <> '';
ALTER TABLE welcomes ADD COLUMN request INTEGER NOT NULL DEFAULT 0;
`,
	// 5: groups recovered in a successor after a member's commit could not
	// be applied.
	`
CREATE TABLE recoveries (
	group_id    BLOB PRIMARY KEY REFERENCES groups(group_id),
	epoch       INTEGER NOT NULL,
	offender    BLOB NOT NULL,
	leader      BLOB NOT NULL,
	roster      BLOB NOT NULL,
	successor   BLOB NOT NULL DEFAULT x'',
	done        INTEGER NOT NULL DEFAULT 0,
	started_at  INTEGER NOT NULL
);
`,
	// 6: a message's number in its group's order, as the node gave it
	// (0 until known: an outgoing message not yet delivered, a message
	// stored before this version).
	`
ALTER TABLE messages ADD COLUMN group_seq INTEGER NOT NULL DEFAULT 0;
`,
	// 7: direct chats, the two-member groups that are the conversation
	// with one person (direct.go).
	`
CREATE TABLE direct_chats (
	group_id     BLOB PRIMARY KEY REFERENCES groups(group_id),
	peer         BLOB NOT NULL CHECK (length(peer) = 32),
	merged_into  BLOB,
	created_at   INTEGER NOT NULL
);
CREATE INDEX direct_chats_peer ON direct_chats(peer, group_id);
`,
	// 8: what a message does (content.go): its kind, the message it
	// refers to, edits, deletes and expiry; receipts per member; a group's
	// disappearing-messages timer.
	`
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN ref BLOB NOT NULL DEFAULT x'';
ALTER TABLE messages ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at > 0;
CREATE TABLE receipts (
	group_id    BLOB NOT NULL,
	message_id  BLOB NOT NULL,
	member      BLOB NOT NULL,
	status      INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	PRIMARY KEY (group_id, message_id, member)
);
ALTER TABLE groups ADD COLUMN disappear_after INTEGER NOT NULL DEFAULT 0;
`,
	// 9: the attachment references of messages (attachment.go).
	migrationAttachments,
	// 10: the device key apart from the user key, and the device's
	// certificate chain (identity.go).
	migrationDevices,
	// 11: the device that sent a message (message.go).
	migrationMessageDevices,
	// 12: the highest device list version accepted per person
	// (devicelist.go).
	migrationDeviceListVersions,
	// 13: the delivery receipts owed (owed_receipt.go).
	migrationOwedReceipts,
	// 14: a group's secret trees apart from its state (group_ratchets.go).
	migrationGroupRatchets,
	// 15: group messages without a recipient list (outbox.go).
	migrationOutboxFanOut,
	// 16: group states in a table of their own (group_states.go).
	migrationGroupStates,
}

// SchemaVersion is the schema version this program writes.
var SchemaVersion = len(migrations)

func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("store: %s has schema version %d, this program knows up to %d: %w", s.path, version, len(migrations), ErrNewerSchema)
	}
	for v := version; v < len(migrations); v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: set schema version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migrate to version %d: %w", v+1, err)
		}
	}
	return nil
}
