package sqlite

// migrationQueueRows stores each message body once, in bodies, and gives
// every recipient a small entry keyed by (recipient, seq) that points at it:
// a fan-out to n recipients writes one body and n entries. The entry keeps
// what differs per recipient (its sequence number, its age for expiry, and
// for a stranger's direct message the bytes it counts against the
// strangers' quota). A body is deleted with its last entry, by trigger, in
// the same transaction as the ack, drain or expiry. Existing messages move
// over: a shared payload becomes one body, every inline message its own.
// The tables carry no foreign keys: each would cost a lookup per entry, and
// the write path always creates the queue row and the body first.
const migrationQueueRows = `
CREATE TABLE bodies (
	id            INTEGER PRIMARY KEY,
	sender        BLOB    NOT NULL,
	client_msg_id BLOB    NOT NULL,
	payload       BLOB    NOT NULL,
	sequenced     INTEGER NOT NULL CHECK (sequenced IN (0, 1)),
	group_seq     INTEGER NOT NULL CHECK (group_seq >= 0),
	refs          INTEGER NOT NULL CHECK (refs >= 0)
);
CREATE TABLE entries (
	recipient      BLOB    NOT NULL,
	seq            INTEGER NOT NULL,
	body           INTEGER NOT NULL,
	enqueued_at    INTEGER NOT NULL,
	stranger_bytes INTEGER CHECK (stranger_bytes >= 0), -- NULL unless a stranger's direct message
	PRIMARY KEY (recipient, seq)
) WITHOUT ROWID;
CREATE INDEX entries_age ON entries (enqueued_at);

INSERT INTO bodies (id, sender, client_msg_id, payload, sequenced, group_seq, refs)
SELECT p.id, m.sender, m.client_msg_id, p.data, m.sequenced, m.group_seq,
	(SELECT count(*) FROM messages r WHERE r.payload_ref = p.id)
FROM payloads p JOIN messages m ON m.id = (SELECT min(f.id) FROM messages f WHERE f.payload_ref = p.id);
INSERT INTO bodies (id, sender, client_msg_id, payload, sequenced, group_seq, refs)
SELECT (SELECT coalesce(max(id), 0) FROM payloads) + m.id, m.sender, m.client_msg_id, m.payload, m.sequenced, m.group_seq, 1
FROM messages m WHERE m.payload_ref IS NULL;
INSERT INTO entries (recipient, seq, body, enqueued_at, stranger_bytes)
SELECT m.recipient, m.seq, coalesce(m.payload_ref, (SELECT coalesce(max(id), 0) FROM payloads) + m.id), m.enqueued_at,
	CASE WHEN m.stranger = 1 THEN length(m.payload) END
FROM messages m;
DROP TABLE messages;
DROP TABLE payloads;

CREATE TRIGGER entries_release_stranger AFTER DELETE ON entries
WHEN old.stranger_bytes IS NOT NULL
BEGIN
	UPDATE queues SET stranger_count = stranger_count - 1, stranger_bytes = stranger_bytes - old.stranger_bytes
	WHERE recipient = old.recipient;
END;
CREATE TRIGGER entries_release_body AFTER DELETE ON entries
BEGIN
	DELETE FROM bodies WHERE id = old.body AND refs = 1;
	UPDATE bodies SET refs = refs - 1 WHERE id = old.body;
END;
`
