package sqlite

// migrationQueueIDs gives every queue a small integer id, the rowid of
// queues, found from the recipient through a unique index, and keys entries
// by (queue id, seq) instead of (recipient, seq): an entry shrinks from
// about 60 to about 25 bytes, so the entries of a fan-out dirty fewer pages
// and their inserts compare integers instead of 32-byte keys. Queue rows are
// never deleted, so an id is never reused. The triggers on entries are
// created again for the new table (the stranger's share is released by
// queue id).
const migrationQueueIDs = `
CREATE TABLE queues_new (
	qid            INTEGER PRIMARY KEY,
	recipient      BLOB    NOT NULL UNIQUE CHECK (length(recipient) = 32),
	last_seq       INTEGER NOT NULL,
	depth          INTEGER NOT NULL CHECK (depth >= 0),
	stranger_count INTEGER NOT NULL DEFAULT 0 CHECK (stranger_count >= 0),
	stranger_bytes INTEGER NOT NULL DEFAULT 0 CHECK (stranger_bytes >= 0)
);
INSERT INTO queues_new (recipient, last_seq, depth, stranger_count, stranger_bytes)
SELECT recipient, last_seq, depth, stranger_count, stranger_bytes FROM queues ORDER BY recipient;
CREATE TABLE entries_new (
	qid            INTEGER NOT NULL,
	seq            INTEGER NOT NULL,
	body           INTEGER NOT NULL,
	enqueued_at    INTEGER NOT NULL,
	stranger_bytes INTEGER CHECK (stranger_bytes >= 0), -- NULL unless a stranger's direct message
	PRIMARY KEY (qid, seq)
) WITHOUT ROWID;
INSERT INTO entries_new (qid, seq, body, enqueued_at, stranger_bytes)
SELECT q.qid, e.seq, e.body, e.enqueued_at, e.stranger_bytes
FROM entries e JOIN queues_new q ON q.recipient = e.recipient;
DROP TABLE entries;
DROP TABLE queues;
ALTER TABLE queues_new RENAME TO queues;
ALTER TABLE entries_new RENAME TO entries;
CREATE INDEX entries_age ON entries (enqueued_at);

CREATE TRIGGER entries_release_stranger AFTER DELETE ON entries
WHEN old.stranger_bytes IS NOT NULL
BEGIN
	UPDATE queues SET stranger_count = stranger_count - 1, stranger_bytes = stranger_bytes - old.stranger_bytes
	WHERE qid = old.qid;
END;
CREATE TRIGGER entries_release_body AFTER DELETE ON entries
BEGIN
	DELETE FROM bodies WHERE id = old.body AND refs = 1;
	UPDATE bodies SET refs = refs - 1 WHERE id = old.body;
END;
`
