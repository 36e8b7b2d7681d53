package postgres

// enqueueDirect is a direct Enqueue in one statement, its own transaction:
// the duplicate check ($3: the call has a client message id), the stranger
// decision ($6: the limits decided it without a roster lookup, as $7), the
// queue's advance with the strangers' share counted in, the message, the
// remembered client message id. The recipient is announced to the other
// nodes by a notification in the statement when $13 says so ($12: the
// channel), else after the commit (see announce.go).
//
// The limits are checked inside the advance, on the queue's row as locked
// ($9: the depth a direct message may take the queue to, the group
// reserve left out; $10, $11: the strangers' message and byte quotas, 0
// for none), so a refused message writes nothing and the statement can
// commit by itself. A concurrent twin of the call (same id) that committed
// after this statement's snapshot makes the remembered id's insert fail
// as a unique violation; the caller then runs the statement again, which
// finds the twin's entry.
//
// It returns one row: a duplicate's first sequence number with dup true;
// or the new sequence number and the queue's state after it; or, for a
// refusal, sequence number 0 and the queue's state as it would have been
// with the message (read from the snapshot, for the error's text).
// Arguments: $1 recipient, $2 sender, $4 client message id, $5 payload,
// $8 the time.
const enqueueDirect = `
WITH dup AS (
	SELECT seq FROM enqueue_dedup WHERE $3::boolean AND recipient = $1 AND sender = $2 AND client_msg_id = $4
), stranger AS (
	SELECT CASE WHEN $6::boolean THEN $7::boolean ELSE NOT EXISTS (
		SELECT 1 FROM group_members a JOIN group_members b ON b.group_id = a.group_id
		WHERE a.identity = $2 AND b.identity = $1) END AS v
), adv AS (
	INSERT INTO queues AS q (recipient, last_seq, depth, stranger_count, stranger_bytes)
	SELECT $1, 1, 1, CASE WHEN s.v THEN 1 ELSE 0 END, CASE WHEN s.v THEN length($5::bytea) ELSE 0 END
	FROM stranger s WHERE NOT EXISTS (SELECT 1 FROM dup)
		AND (NOT s.v OR $11::bigint = 0 OR length($5::bytea) <= $11::bigint)
	ON CONFLICT (recipient) DO UPDATE SET last_seq = q.last_seq + 1, depth = q.depth + 1,
		stranger_count = q.stranger_count + excluded.stranger_count,
		stranger_bytes = q.stranger_bytes + excluded.stranger_bytes
	WHERE q.depth < $9::bigint AND (excluded.stranger_count = 0 OR (
		($10::bigint = 0 OR q.stranger_count < $10::bigint) AND
		($11::bigint = 0 OR q.stranger_bytes + excluded.stranger_bytes <= $11::bigint)))
	RETURNING last_seq, depth, stranger_count, stranger_bytes
), msg AS (
	INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, enqueued_at, sequenced, group_seq, stranger)
	SELECT $1, a.last_seq, $2, $4, $5, $8, false, 0, s.v FROM adv a, stranger s
), remember AS (
	INSERT INTO enqueue_dedup (recipient, sender, client_msg_id, seq, created_at)
	SELECT $1, $2, $4, a.last_seq, $8 FROM adv a WHERE $3::boolean
)
SELECT d.seq, true, 0::bigint, 0::bigint, 0::bigint, false FROM dup d
UNION ALL
SELECT a.last_seq, false, a.depth, a.stranger_count, a.stranger_bytes, s.v
FROM adv a CROSS JOIN stranger s
LEFT JOIN LATERAL (SELECT pg_notify($12, encode($1::bytea, 'hex')) WHERE $13::boolean) n ON true
UNION ALL
SELECT 0::bigint, false, coalesce(q.depth, 0) + 1,
	coalesce(q.stranger_count, 0) + CASE WHEN s.v THEN 1 ELSE 0 END,
	coalesce(q.stranger_bytes, 0) + CASE WHEN s.v THEN length($5::bytea) ELSE 0 END, s.v
FROM stranger s LEFT JOIN queues q ON q.recipient = $1
WHERE NOT EXISTS (SELECT 1 FROM dup) AND NOT EXISTS (SELECT 1 FROM adv)`
