package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

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

// clampSeq maps a caller's uint64 sequence number onto SQLite's int64 range;
// stored numbers never exceed math.MaxInt64.
func clampSeq(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// queueOf is the id of the queue of the recipient bound to its parameter
// (NULL, which matches no entry, for a recipient without a queue).
const queueOf = `(SELECT qid FROM queues WHERE recipient = ?)`

// unseen counts, in a statement on a queue's row, the queue's entries
// numbered above the row's last_seq: what the row misses of the queue's
// numbers and depth (see queuecache.go).
const unseen = `max(coalesce((SELECT max(e.seq) FROM entries e WHERE e.qid = queues.qid), 0) - queues.last_seq, 0)`

// The statements of Enqueue and Ack.
var (
	enqueueDedupQuery = hot(`SELECT seq FROM enqueue_dedup WHERE recipient = ? AND sender = ? AND client_msg_id = ?`)
	// The id is remembered before the message is stored, with the number
	// the queue hands out next (the writer runs one call at a time, so the
	// advance that follows hands out exactly that one): one statement both
	// checks for a duplicate and remembers a new id. A call refused after
	// it deletes the id again (enqueueDedupForget).
	enqueueDedupClaim = hot(`
INSERT INTO enqueue_dedup (recipient, sender, client_msg_id, seq, created_at)
VALUES (?1, ?2, ?3, coalesce((SELECT last_seq + ` + unseen + ` FROM queues WHERE recipient = ?1), 0) + 1, ?4)
ON CONFLICT DO NOTHING`)
	enqueueDedupForget = hot(`DELETE FROM enqueue_dedup WHERE recipient = ? AND sender = ? AND client_msg_id = ?`)
	// The advance counts the message in only if the queue has room for
	// it (?4: the depth it may reach; ?5 and ?6: the strangers' messages
	// and bytes, checked for a stranger's message, ?2 = 1, only), and
	// returns no row otherwise: a refusal writes nothing, so an enqueue
	// needs no savepoint to be undone (see writeBare). A stranger's first
	// message larger than the strangers' bytes creates no queue.
	advanceQueue = hot(`
INSERT INTO queues (recipient, last_seq, depth, stranger_count, stranger_bytes)
SELECT ?1, 1, 1, ?2, ?3 WHERE ?3 <= ?6
ON CONFLICT (recipient) DO UPDATE SET last_seq = last_seq + ` + unseen + ` + 1, depth = depth + ` + unseen + ` + 1,
	stranger_count = stranger_count + ?2, stranger_bytes = stranger_bytes + ?3
WHERE depth + ` + unseen + ` < ?4 AND (?2 = 0 OR (stranger_count < ?5 AND stranger_bytes + ?3 <= ?6))
RETURNING qid, last_seq`)
	// advanceQueueLooking is advanceQueue for a direct message whose
	// sender may be a stranger (?2 unused, ?3 the payload's size, ?7 the
	// sender): it looks at the rosters itself (strangerQuery), counts the
	// message in as advanceQueue does, and returns whether the sender is a
	// stranger, a statement less than asking first.
	advanceQueueLooking = hot(`
WITH s(stranger) AS MATERIALIZED (SELECT NOT EXISTS (SELECT 1 FROM group_members a JOIN group_members b ON b.group_id = a.group_id
	WHERE a.identity = ?7 AND b.identity = ?1))
INSERT INTO queues (recipient, last_seq, depth, stranger_count, stranger_bytes)
SELECT ?1, 1, 1, stranger, stranger * ?3 FROM s WHERE stranger * ?3 <= ?6
ON CONFLICT (recipient) DO UPDATE SET last_seq = last_seq + ` + unseen + ` + 1, depth = depth + ` + unseen + ` + 1,
	stranger_count = stranger_count + excluded.stranger_count, stranger_bytes = stranger_bytes + excluded.stranger_bytes
WHERE depth + ` + unseen + ` < ?4 AND (excluded.stranger_count = 0 OR (stranger_count < ?5 AND stranger_bytes + excluded.stranger_bytes <= ?6))
RETURNING qid, last_seq, (SELECT stranger FROM s)`)
	queueCounts = hot(`SELECT depth + ` + unseen + `, stranger_count, stranger_bytes FROM queues WHERE recipient = ?`)
	// Its id is the insert's rowid: an exec is cheaper than a query.
	insertBody = hot(`
INSERT INTO bodies (sender, client_msg_id, payload, sequenced, group_seq, refs) VALUES (?, ?, ?, ?, ?, ?)`)
	insertEntry    = hot(`INSERT INTO entries (qid, seq, body, enqueued_at, stranger_bytes) VALUES (?, ?, ?, ?, ?)`)
	deleteMessages = hot(`DELETE FROM entries WHERE qid = ? AND seq <= ?`)
	// shrinkQueue brings a queue's row up to date (see queuecache.go)
	// less the messages up to ?2 that the delete that follows removes.
	shrinkQueue = hot(`
UPDATE queues SET
	depth = depth + ` + unseen + ` - (SELECT count(*) FROM entries e WHERE e.qid = queues.qid AND e.seq <= ?2),
	last_seq = last_seq + ` + unseen + `
WHERE recipient = ?1 RETURNING qid`)
)

// Enqueue implements store.Store. A queue already holding
// Limits.MaxQueueDepth messages refuses more with store.ErrLimit. A non-empty
// clientMsgID is remembered for DedupRetention after the enqueue, so a repeat
// within that time is a duplicate even if the message was acknowledged.
func (s *Store) Enqueue(ctx context.Context, recipient, sender, clientMsgID, payload []byte) (uint64, bool, error) {
	const op = "enqueue"
	if err := errors.Join(store.CheckKey("recipient", recipient), store.CheckSender(sender), store.CheckClientMsgID(clientMsgID)); err != nil {
		return 0, false, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var (
		seq int64
		dup bool
	)
	err := s.writeBare(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now().UnixNano()
		// The statements below number and count from the queue's row.
		s.qc.forget(recipient)
		if len(clientMsgID) > 0 {
			res, err := s.exec(ctx, tx, enqueueDedupClaim, recipient, nonNil(sender), clientMsgID, now)
			if err != nil {
				return fmt.Errorf("sqlite: %s: remember client message id: %w", op, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: %s: remember client message id: %w", op, err)
			}
			if n == 0 {
				if err := s.queryRow(ctx, tx, enqueueDedupQuery, recipient, nonNil(sender), clientMsgID).Scan(&seq); err != nil {
					return fmt.Errorf("sqlite: %s: %w", op, err)
				}
				dup = true
				return nil
			}
		}
		kind := directMsg
		if stranger, decided := s.limits.StrangerWithoutLookup(recipient, sender); decided {
			kind = memberMsg
			if stranger {
				kind = strangerMsg
			}
		}
		var err error
		seq, err = s.appendMsgTx(ctx, tx, recipient, sender, clientMsgID, payload, now, 0, kind)
		if no, ok := err.(*refusal); ok {
			if len(clientMsgID) > 0 {
				if _, err := s.exec(ctx, tx, enqueueDedupForget, recipient, nonNil(sender), clientMsgID); err != nil {
					return fmt.Errorf("sqlite: %s: forget the refused client message id: %w (after %w)", op, err, no.err)
				}
			}
			return &refusal{fmt.Errorf("sqlite: %s: %w", op, no.err)}
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return uint64(seq), dup, nil
}

// appendTx appends one group message, number groupSeq in its group's order,
// to recipient's queue inside tx and returns its sequence number, refusing
// with store.ErrLimit when the queue is full.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, recipient, sender, clientMsgID, payload []byte, now, groupSeq int64) (int64, error) {
	return s.appendMsgTx(ctx, tx, recipient, sender, clientMsgID, payload, now, groupSeq, groupMsg)
}

// msgKind is what appendMsgTx stores: group traffic, or a direct message,
// whose quotas depend on whether its sender is a stranger to the recipient.
type msgKind int

const (
	groupMsg    msgKind = iota
	memberMsg           // direct, from a sender known to be no stranger
	strangerMsg         // direct, from a sender known to be a stranger
	directMsg           // direct, from a sender the rosters decide about
)

// appendMsgTx is appendTx for any kind of message (groupSeq 0 for a direct
// one, which the quotas of store.Limits.DirectRoom also bound). A message
// the queue has no room for is refused before anything is written, with a
// *refusal.
func (s *Store) appendMsgTx(ctx context.Context, tx *sql.Tx, recipient, sender, clientMsgID, payload []byte, now, groupSeq int64, kind msgKind) (int64, error) {
	var (
		qid, seq int64
		stranger bool
		err      error
	)
	// The advance numbers and counts from the queue's row.
	s.qc.forget(recipient)
	size := int64(len(payload))
	room, maxStrangers, maxStrangerBytes := s.room(kind != groupMsg)
	if kind == directMsg {
		err = s.queryRow(ctx, tx, advanceQueueLooking, recipient, nil, size, room, maxStrangers, maxStrangerBytes, nonNil(sender)).
			Scan(&qid, &seq, &stranger)
	} else {
		stranger = kind == strangerMsg
		var counted int64 // the bytes the message counts against the strangers' quota
		if stranger {
			counted = size
		}
		err = s.queryRow(ctx, tx, advanceQueue, recipient, stranger, counted, room, maxStrangers, maxStrangerBytes).
			Scan(&qid, &seq)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, s.refused(ctx, tx, recipient, sender, size, kind)
	}
	if err != nil {
		return 0, err
	}
	res, err := s.exec(ctx, tx, insertBody, nonNil(sender), nonNil(clientMsgID), nonNil(payload), kind == groupMsg, groupSeq, 1)
	if err != nil {
		return 0, err
	}
	body, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	var counted any // NULL unless the message counts against the strangers' quota
	if stranger {
		counted = size
	}
	if _, err := s.exec(ctx, tx, insertEntry, qid, seq, body, now, counted); err != nil {
		return 0, err
	}
	return seq, nil
}

// room returns the bounds advanceQueue checks: the depth a queue may
// reach with a message (direct messages leave the group reserve free), and
// the strangers' messages and bytes (unbounded when the limit is zero).
func (s *Store) room(direct bool) (depth, strangers, strangerBytes int64) {
	l := s.limits
	depth, strangers, strangerBytes = int64(l.MaxQueueDepth), math.MaxInt64, math.MaxInt64
	if !direct {
		return depth, strangers, strangerBytes
	}
	if l.GroupReserve > 0 {
		depth -= int64(l.GroupReserve)
	}
	if l.MaxStrangerMessages > 0 {
		strangers = int64(l.MaxStrangerMessages)
	}
	if l.MaxStrangerBytes > 0 {
		strangerBytes = l.MaxStrangerBytes
	}
	return depth, strangers, strangerBytes
}

// refused names the limit that kept the advance from counting a message of
// size bytes in: the checks of store.Limits on the queue's counts as they
// would have been with the message.
func (s *Store) refused(ctx context.Context, tx *sql.Tx, recipient, sender []byte, size int64, kind msgKind) error {
	stranger := kind == strangerMsg
	if kind == directMsg {
		var err error
		if stranger, err = s.isStranger(ctx, tx, recipient, sender); err != nil {
			return fmt.Errorf("decide about a refused message: %w", err)
		}
	}
	var depth, strangers, strangerBytes int64
	err := s.queryRow(ctx, tx, queueCounts, recipient).Scan(&depth, &strangers, &strangerBytes)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read the counts of a queue that refused a message: %w", err)
	}
	depth++
	if stranger {
		strangers, strangerBytes = strangers+1, strangerBytes+size
	}
	if depth > int64(s.limits.MaxQueueDepth) {
		return &refusal{fmt.Errorf("queue of %x holds %d messages (limit %d): %w",
			recipient, depth-1, s.limits.MaxQueueDepth, store.ErrLimit)}
	}
	if kind != groupMsg {
		if err := s.limits.DirectRoom(recipient, depth, strangers, strangerBytes, stranger); err != nil {
			return &refusal{err}
		}
	}
	return fmt.Errorf("queue of %x refused a message within its limits", recipient)
}

// Receive implements store.Store. limit must be positive.
func (s *Store) Receive(ctx context.Context, recipient []byte, after uint64, limit int) ([]store.Message, error) {
	const op = "receive"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("sqlite: %s: limit %d is not positive: %w", op, limit, store.ErrInvalid)
	}
	// One statement reads one snapshot: no transaction needed. It is
	// prepared once per reader connection (the push path runs it for every
	// wake-up).
	leave, err := s.enter(op)
	if err != nil {
		return nil, err
	}
	defer leave()
	msgs, err := scanMessages(s.receiveStmt.QueryContext(ctx, recipient, clampSeq(after), limit))
	if err != nil {
		err = fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// Ack implements store.Store. Acknowledging what is already gone deletes
// nothing and is not an error.
func (s *Store) Ack(ctx context.Context, recipient []byte, upTo uint64) (int, error) {
	const op = "ack"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var n int64
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = s.deleteUpTo(ctx, tx, recipient, clampSeq(upTo))
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	return int(n), err
}

// LastSeq implements store.Store: the higher of the queue row's last_seq
// and its highest entry (see queuecache.go), read from the last commit.
func (s *Store) LastSeq(ctx context.Context, recipient []byte) (uint64, error) {
	const op = "last seq"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	leave, err := s.enter(op)
	if err != nil {
		return 0, err
	}
	defer leave()
	var last int64
	err = s.lastSeqStmt.QueryRowContext(ctx, recipient).Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return uint64(last), nil
}

// deleteUpTo deletes recipient's messages with seq <= upTo and keeps the
// queue's row up to date: its numbers must outlast the entries.
func (s *Store) deleteUpTo(ctx context.Context, tx *sql.Tx, recipient []byte, upTo int64) (int64, error) {
	st := s.qc.get(recipient)
	if st == nil {
		var qid int64
		err := s.queryRow(ctx, tx, shrinkQueue, recipient, upTo).Scan(&qid)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil // no queue, nothing to delete
		}
		if err != nil {
			return 0, err
		}
		res, err := s.exec(ctx, tx, deleteMessages, qid, upTo)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	res, err := s.exec(ctx, tx, deleteMessages, st.qid, upTo)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if n > 0 || st.dirty {
		s.qc.touch(st)
		if _, err := s.exec(ctx, tx, queueStore, st.last, st.depth-n, st.qid); err != nil {
			return 0, err
		}
		st.depth -= n
		st.dirty = false
	}
	return n, nil
}

// Drain implements store.Store.
func (s *Store) Drain(ctx context.Context, recipient []byte) ([]store.Message, error) {
	const op = "drain"
	if err := store.CheckKey("recipient", recipient); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var msgs []store.Message
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		msgs, err = scanMessages(tx.QueryContext(ctx, selectMessages+`
WHERE e.qid = `+queueOf+` ORDER BY e.seq`, recipient))
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if len(msgs) == 0 {
			return nil
		}
		if _, err := s.deleteUpTo(ctx, tx, recipient, int64(msgs[len(msgs)-1].Seq)); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// lastSeqQuery is LastSeq's statement.
const lastSeqQuery = `SELECT max(last_seq, coalesce((SELECT max(e.seq) FROM entries e WHERE e.qid = queues.qid), 0))
FROM queues WHERE recipient = ?`

// receiveQuery is Receive's statement.
const receiveQuery = selectMessages + `
WHERE e.qid = ` + queueOf + ` AND e.seq > ? ORDER BY e.seq LIMIT ?`

// selectMessages selects the columns scanMessages reads: a recipient's
// entries with the bodies they point at.
const selectMessages = `
SELECT e.seq, b.sender, b.client_msg_id, b.payload, e.enqueued_at, b.sequenced, b.group_seq
FROM entries e JOIN bodies b ON b.id = e.body`

// scanMessages reads rows of (seq, sender, client_msg_id, payload, enqueued_at, sequenced, group_seq).
func scanMessages(rows *sql.Rows, err error) ([]store.Message, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []store.Message
	for rows.Next() {
		var (
			m             store.Message
			seq, at, gseq int64
		)
		if err := rows.Scan(&seq, &m.Sender, &m.ClientMsgID, &m.Payload, &at, &m.Sequenced, &gseq); err != nil {
			return nil, err
		}
		m.Seq, m.GroupSeq = uint64(seq), uint64(gseq)
		m.EnqueuedAt = time.Unix(0, at)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return msgs, nil
}
