package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quicproquo/quicproquo/node/store"
)

// nonNil turns nil into an empty slice: the columns are NOT NULL and an empty
// sender or client message id is a value, not an absence.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// clampSeq maps a caller's uint64 sequence number onto bigint's range;
// stored numbers never exceed math.MaxInt64.
func clampSeq(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// Enqueue implements store.Store. A queue already holding
// Limits.MaxQueueDepth messages refuses more with store.ErrLimit. A non-empty
// clientMsgID is remembered for DedupRetention after the enqueue, so a repeat
// within that time is a duplicate even if the message was acknowledged.
func (s *Store) Enqueue(ctx context.Context, recipient, sender, clientMsgID, payload []byte) (uint64, bool, error) {
	const op = "enqueue"
	if err := errors.Join(store.CheckKey("recipient", recipient), store.CheckSender(sender), store.CheckClientMsgID(clientMsgID)); err != nil {
		return 0, false, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var (
		seq int64
		dup bool
	)
	stranger, decided := s.limits.StrangerWithoutLookup(recipient, sender)
	room := int64(s.limits.MaxQueueDepth)
	if r := s.limits.GroupReserve; r > 0 {
		room -= int64(r)
	}
	// Alone, the enqueue notifies in its own statement; beside others in
	// flight it leaves the notification to the announcer, so that their
	// commits do not queue for the notification lock (announce.go).
	inline := s.enqueuing.Add(1) == 1
	defer s.enqueuing.Add(-1)
	err := s.single(ctx, op, func(err error) bool {
		// A twin of this call committed its id after our snapshot: the
		// next run finds it and answers as a duplicate.
		return uniqueViolation(err, "enqueue_dedup_pkey")
	}, func(ctx context.Context, conn *pgxpool.Conn) error {
		var (
			depth, strangers, strangerBytes int64
			isStranger                      bool
		)
		if err := conn.QueryRow(ctx, enqueueDirect, recipient, nonNil(sender), len(clientMsgID) > 0, nonNil(clientMsgID),
			nonNil(payload), decided, stranger, s.now(),
			room, int64(s.limits.MaxStrangerMessages), s.limits.MaxStrangerBytes, notifyChannel, inline).Scan(&seq, &dup, &depth, &strangers, &strangerBytes, &isStranger); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if dup || seq > 0 {
			return nil
		}
		// Refused: name the limit from the queue's state as the snapshot
		// saw it. Should that state have room, a concurrent call filled
		// the queue after the snapshot; run again to see it.
		if depth > int64(s.limits.MaxQueueDepth) {
			return fmt.Errorf("postgres: %s: queue of %x holds %d messages (limit %d): %w",
				op, recipient, depth-1, s.limits.MaxQueueDepth, store.ErrLimit)
		}
		if err := s.limits.DirectRoom(recipient, depth, strangers, strangerBytes, isStranger); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return errRerun
	})
	if errors.Is(err, errRerun) {
		return 0, false, fmt.Errorf("postgres: %s: queue of %x had no room for the message: %w", op, recipient, store.ErrLimit)
	}
	if err != nil {
		return 0, false, err
	}
	if !dup && !inline {
		s.announce(recipient)
	}
	return uint64(seq), dup, nil
}

// delivery is one payload for a list of distinct recipients.
type delivery struct {
	recipients [][]byte
	payload    []byte
	groupSeq   int64 // a group commit's or fan-out's per-group sequence number; 0 for a direct enqueue
}

// sequenced reports whether d is group traffic, in its group's order.
func (d delivery) sequenced() bool { return d.groupSeq > 0 }

// notifyChannel is the channel of the notifications that tell every node
// sharing the database which queues have new messages (see Notifications).
const notifyChannel = "qpnode_messages"

// notifyBatch is how many recipients one notification names: 100 hex keys
// and their commas stay well under PostgreSQL's 8000-byte payload limit.
const notifyBatch = 100

// appendTx appends the payload of each delivery to the queue of each of its
// recipients inside tx, in order, and returns the sequence numbers given
// (seqs[i][j] for ds[i].recipients[j]). It refuses with store.ErrLimit
// when a queue would exceed Limits.MaxQueueDepth. It locks the queues of
// every recipient in one statement, in the order of their keys, so
// concurrent fan-outs to overlapping recipients never deadlock; and it
// sends a notification naming every recipient, delivered to the listeners
// when (and only if) tx commits. A payload for several recipients is stored
// once, in payloads.
func (s *Store) appendTx(ctx context.Context, tx pgx.Tx, sender, clientMsgID []byte, now time.Time, ds ...delivery) ([][]int64, error) {
	count := make(map[string]int64)
	var keys [][]byte
	for _, d := range ds {
		for _, r := range d.recipients {
			if count[string(r)] == 0 {
				keys = append(keys, r)
			}
			count[string(r)]++
		}
	}
	if len(keys) == 0 {
		return make([][]int64, len(ds)), nil
	}
	rows, err := tx.Query(ctx, `
INSERT INTO queues AS q (recipient, last_seq, depth)
SELECT r, count(*), count(*) FROM unnest($1::bytea[]) AS r GROUP BY r ORDER BY r
ON CONFLICT (recipient) DO UPDATE SET last_seq = q.last_seq + excluded.last_seq, depth = q.depth + excluded.depth
RETURNING recipient, last_seq, depth`, flatten(ds))
	if err != nil {
		return nil, fmt.Errorf("advance queues: %w", err)
	}
	next := make(map[string]int64, len(keys))
	var full error
	for rows.Next() {
		var (
			r           []byte
			last, depth int64
		)
		if err := rows.Scan(&r, &last, &depth); err != nil {
			rows.Close()
			return nil, fmt.Errorf("advance queues: %w", err)
		}
		n := count[string(r)]
		if depth > int64(s.limits.MaxQueueDepth) && full == nil {
			full = fmt.Errorf("queue of %x holds %d messages (limit %d): %w",
				r, depth-n, s.limits.MaxQueueDepth, store.ErrLimit)
		}
		next[string(r)] = last - n + 1
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("advance queues: %w", err)
	}
	if full != nil {
		return nil, full
	}
	if len(next) != len(keys) {
		return nil, fmt.Errorf("advance queues: %d of %d queues advanced", len(next), len(keys))
	}
	seqs := make([][]int64, len(ds))
	for i, d := range ds {
		seqs[i] = make([]int64, len(d.recipients))
		for j, r := range d.recipients {
			seqs[i][j] = next[string(r)]
			next[string(r)]++
		}
		if err := insertMessages(ctx, tx, d, seqs[i], sender, clientMsgID, now); err != nil {
			return nil, err
		}
	}
	if _, err := tx.Exec(ctx, `
SELECT pg_notify($1, string_agg(encode(r, 'hex'), ','))
FROM (SELECT r, (row_number() OVER () - 1) / $3 AS batch FROM unnest($2::bytea[]) AS r) AS t
GROUP BY batch`, notifyChannel, keys, notifyBatch); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return seqs, nil
}

// flatten lists the recipients of every delivery, repeats included.
func flatten(ds []delivery) [][]byte {
	var all [][]byte
	for _, d := range ds {
		all = append(all, d.recipients...)
	}
	return all
}

// insertMessages stores d's messages with their sequence numbers: the
// payload inline for one recipient, else once in payloads, referenced by
// every recipient's message.
func insertMessages(ctx context.Context, tx pgx.Tx, d delivery, seqs []int64, sender, clientMsgID []byte, now time.Time) error {
	switch len(d.recipients) {
	case 0:
		return nil
	case 1:
		if _, err := tx.Exec(ctx, `
INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, enqueued_at, sequenced, group_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			d.recipients[0], seqs[0], nonNil(sender), nonNil(clientMsgID), nonNil(d.payload), now, d.sequenced(), d.groupSeq); err != nil {
			return fmt.Errorf("store message: %w", err)
		}
		return nil
	}
	var ref int64
	if err := tx.QueryRow(ctx, `INSERT INTO payloads (data, refs) VALUES ($1, $2) RETURNING id`,
		nonNil(d.payload), len(d.recipients)).Scan(&ref); err != nil {
		return fmt.Errorf("store payload: %w", err)
	}
	tag, err := tx.Exec(ctx, `
INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, payload_ref, enqueued_at, sequenced, group_seq)
SELECT r, seq, $3, $4, '\x'::bytea, $5, $6, $7, $8 FROM unnest($1::bytea[], $2::bigint[]) AS t (r, seq)`,
		d.recipients, seqs, nonNil(sender), nonNil(clientMsgID), ref, now, d.sequenced(), d.groupSeq)
	if err != nil {
		return fmt.Errorf("store messages: %w", err)
	}
	if n := tag.RowsAffected(); n != int64(len(d.recipients)) {
		return fmt.Errorf("stored %d messages for %d recipients", n, len(d.recipients))
	}
	return nil
}

// Receive implements store.Store. limit must be positive. It reads one
// snapshot in one statement and sees only committed messages; since the
// writers of a queue hold its row lock until they commit, a reader never
// sees a sequence number before every smaller one is committed too.
func (s *Store) Receive(ctx context.Context, recipient []byte, after uint64, limit int) ([]store.Message, error) {
	const op = "receive"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("postgres: %s: limit %d is not positive: %w", op, limit, store.ErrInvalid)
	}
	var msgs []store.Message
	err := s.read(ctx, op, func(ctx context.Context) error {
		var err error
		msgs, err = scanMessages(s.pool.Query(ctx, selectMessages+`
WHERE m.recipient = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`, recipient, clampSeq(after), int64(limit)))
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// LastSeq implements store.Store.
func (s *Store) LastSeq(ctx context.Context, recipient []byte) (uint64, error) {
	const op = "last seq"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return 0, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var last int64
	err := s.read(ctx, op, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, `SELECT last_seq FROM queues WHERE recipient = $1`, recipient).Scan(&last)
		if errors.Is(err, pgx.ErrNoRows) {
			last = 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return uint64(last), nil
}

// lockQueue locks recipient's queue row and reports whether it exists.
func lockQueue(ctx context.Context, tx pgx.Tx, recipient []byte) (bool, error) {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM queues WHERE recipient = $1 FOR UPDATE`, recipient).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock queue: %w", err)
	}
	return true, nil
}

// Ack implements store.Store. Acknowledging what is already gone deletes
// nothing and is not an error.
func (s *Store) Ack(ctx context.Context, recipient []byte, upTo uint64) (int, error) {
	const op = "ack"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return 0, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var n int64
	err := s.single(ctx, op, func(error) bool { return false }, func(ctx context.Context, conn *pgxpool.Conn) error {
		if err := conn.QueryRow(ctx, ackQueue, recipient, clampSeq(upTo)).Scan(&n); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return int(n), err
}

// ackQueue is an Ack in one statement, its own transaction: it locks the
// queue's row ($1) first (the one-time filter runs before the scan
// deletes anything), as every write to a queue does, deletes the messages
// up to $2 (the trigger releasing their shared payloads runs at the
// statement's end, locking those in id order), keeps the depth in step
// and returns how many it deleted.
const ackQueue = `
WITH q AS (
	SELECT 1 FROM queues WHERE recipient = $1 FOR UPDATE
), del AS (
	DELETE FROM messages WHERE recipient = $1 AND seq <= $2 AND EXISTS (SELECT 1 FROM q) RETURNING 1
), n AS (
	SELECT count(*) AS n FROM del
), upd AS (
	UPDATE queues SET depth = depth - n.n FROM n WHERE recipient = $1 AND n.n > 0
)
SELECT n FROM n`

// deleteUpTo deletes recipient's messages with seq <= upTo (their shared
// payloads are released by a trigger) and keeps the queue's depth in step.
// The caller holds the queue's lock.
func deleteUpTo(ctx context.Context, tx pgx.Tx, recipient []byte, upTo int64) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM messages WHERE recipient = $1 AND seq <= $2`, recipient, upTo)
	if err != nil {
		return 0, err
	}
	n := tag.RowsAffected()
	if n > 0 {
		if _, err := tx.Exec(ctx, `UPDATE queues SET depth = depth - $1 WHERE recipient = $2`, n, recipient); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Drain implements store.Store.
func (s *Store) Drain(ctx context.Context, recipient []byte) ([]store.Message, error) {
	const op = "drain"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var msgs []store.Message
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		msgs = nil
		ok, err := lockQueue(ctx, tx, recipient)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if !ok {
			return errRollback
		}
		msgs, err = scanMessages(tx.Query(ctx, selectMessages+`
WHERE m.recipient = $1 ORDER BY m.seq`, recipient))
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if len(msgs) == 0 {
			return errRollback
		}
		if _, err := deleteUpTo(ctx, tx, recipient, int64(msgs[len(msgs)-1].Seq)); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// selectMessages selects the columns scanMessages reads; a shared payload is
// read from payloads.
const selectMessages = `
SELECT m.seq, m.sender, m.client_msg_id, coalesce(p.data, m.payload), m.enqueued_at, m.sequenced, m.group_seq
FROM messages m LEFT JOIN payloads p ON p.id = m.payload_ref`

// scanMessages reads rows of (seq, sender, client_msg_id, payload, enqueued_at, sequenced, group_seq).
func scanMessages(rows pgx.Rows, err error) ([]store.Message, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []store.Message
	for rows.Next() {
		var (
			m         store.Message
			seq, gseq int64
		)
		if err := rows.Scan(&seq, &m.Sender, &m.ClientMsgID, &m.Payload, &m.EnqueuedAt, &m.Sequenced, &gseq); err != nil {
			return nil, err
		}
		m.Seq, m.GroupSeq = uint64(seq), uint64(gseq)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return msgs, nil
}
