package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// A fan-out writes only its recipients' entries, not their queue rows: the
// writer keeps each queue's last sequence number and depth in memory and
// brings the row up to date lazily. On disk the numbers stay whole at every
// commit, because of one rule: a queue's entries numbered above its row's
// last_seq are exactly the messages stored since the row was last brought
// up to date, numbered on without a gap and none of them deleted yet. So
// the queue's last number is max(last_seq, its highest entry) and its depth
// the row's depth plus the entries above last_seq (queueLoad), after a
// restart or a crash as well as in a running store. Everything that
// deletes entries (Ack, Drain, a revoked device's queue, Expire) first
// brings the row up to date in the same transaction, and every statement
// that numbers or counts from the row (a direct enqueue, its deduplication
// claim) adds the entries above it (unseen) and forgets the queue here.
//
// The memory is only the writer's (every write runs on the writer
// goroutine). A write that is rolled back (its savepoint, its transaction,
// or a failed commit) drops every queue the transaction touched, to be
// loaded again from the database; a commit by another connection on the
// same file (PRAGMA data_version) drops them all. The cache holds at most
// maxCachedQueues queues: past that it writes the rows it holds and
// starts over.

// maxCachedQueues bounds the queues the writer remembers, about 130 bytes
// each (a variable for tests).
var maxCachedQueues = 1 << 14

// queueState is a queue as the writer knows it.
type queueState struct {
	key              string // the recipient
	qid, last, depth int64
	dirty            bool // the row lags: it misses messages counted here
	touched          bool // listed in queueCache.touched
}

// queueCache is the writer's memory of queues, by recipient.
type queueCache struct {
	m       map[string]*queueState
	touched []*queueState // loaded or changed since the last commit
	version int64         // PRAGMA data_version the cache is valid for
}

// The statements of the queue cache.
var (
	// queueLoad reads each listed queue's row and its highest entry.
	queueLoad = hot(`
SELECT q.recipient, q.qid, q.last_seq, q.depth, coalesce((SELECT max(e.seq) FROM entries e WHERE e.qid = q.qid), 0)
FROM queues q WHERE q.recipient IN (SELECT unhex(value) FROM json_each(?))`)
	queueCreate = hot(`
INSERT INTO queues (recipient, last_seq, depth) SELECT unhex(value), 0, 0 FROM json_each(?) WHERE true
ON CONFLICT (recipient) DO NOTHING RETURNING recipient, qid`)
	queueStore = hot(`UPDATE queues SET last_seq = ?, depth = ? WHERE qid = ?`)
	// queueStoreAll stores the queues of a JSON array of [qid, last, depth].
	queueStoreAll = `
UPDATE queues SET last_seq = value->>1, depth = value->>2 FROM json_each(?) WHERE qid = value->>0`
	// insertCachedEntries stores the entries of a JSON object mapping
	// each queue id to the entry's sequence number.
	insertCachedEntries = hot(`
INSERT INTO entries (qid, seq, body, enqueued_at, stranger_bytes)
SELECT CAST(key AS INTEGER), value, ?1, ?2, NULL FROM json_each(?3)`)
	dataVersion = hot(`PRAGMA data_version`)
)

// sync drops the cache when another connection committed since it was
// filled. It runs at the start of every write transaction.
func (c *queueCache) sync(ctx context.Context, tx *sql.Tx, s *Store) error {
	var v int64
	if err := s.queryRow(ctx, tx, dataVersion).Scan(&v); err != nil {
		return fmt.Errorf("read data version: %w", err)
	}
	if v != c.version {
		c.m, c.touched, c.version = nil, nil, v
	}
	return nil
}

// committed forgets what the committed transaction touched: it is on disk.
func (c *queueCache) committed() {
	for _, st := range c.touched {
		st.touched = false
	}
	c.touched = c.touched[:0]
}

// rolledBack drops every queue the transaction touched.
func (c *queueCache) rolledBack() {
	for _, st := range c.touched {
		st.touched = false
		if c.m[st.key] == st {
			delete(c.m, st.key)
		}
	}
	c.touched = c.touched[:0]
}

// get returns recipient's queue if the cache holds it.
func (c *queueCache) get(recipient []byte) *queueState {
	return c.m[string(recipient)]
}

// put remembers a queue loaded or created in the running transaction.
func (c *queueCache) put(recipient []byte, st *queueState) {
	if c.m == nil {
		c.m = make(map[string]*queueState)
	}
	st.key = string(recipient)
	c.m[st.key] = st
	c.touch(st)
}

// touch notes that the running transaction changes st.
func (c *queueCache) touch(st *queueState) {
	if !st.touched {
		st.touched = true
		c.touched = append(c.touched, st)
	}
}

// forget drops recipient's queue: the caller numbers or counts from the
// row, which with the entries above it says all (see unseen).
func (c *queueCache) forget(recipient []byte) {
	delete(c.m, string(recipient))
}

// flushAll brings every row the cache holds up to date and empties it.
func (c *queueCache) flushAll(ctx context.Context, tx *sql.Tx, s *Store) error {
	list := []byte{'['}
	for _, st := range c.m {
		if !st.dirty {
			continue
		}
		if len(list) > 1 {
			list = append(list, ',')
		}
		list = append(list, '[')
		list = strconv.AppendInt(list, st.qid, 10)
		list = append(list, ',')
		list = strconv.AppendInt(list, st.last, 10)
		list = append(list, ',')
		list = strconv.AppendInt(list, st.depth, 10)
		list = append(list, ']')
	}
	if len(list) > 1 {
		if _, err := s.exec(ctx, tx, queueStoreAll, string(append(list, ']'))); err != nil {
			return fmt.Errorf("store queue rows: %w", err)
		}
	}
	// Whatever happens to the transaction, an empty cache is right.
	c.m = nil
	c.touched = nil
	return nil
}

// states returns the queues of recipients (distinct), loading those the
// cache does not hold and creating those that do not exist.
func (c *queueCache) states(ctx context.Context, tx *sql.Tx, s *Store, recipients [][]byte) ([]*queueState, error) {
	out := make([]*queueState, len(recipients))
	var missing [][]byte
	for i, r := range recipients {
		if out[i] = c.get(r); out[i] == nil {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	if len(c.m)+len(missing) > maxCachedQueues {
		if err := c.flushAll(ctx, tx, s); err != nil {
			return nil, err
		}
		missing = recipients
	}
	list := hexList(missing)
	if err := c.load(ctx, tx, s, queueLoad, list, func(rows *sql.Rows) (recipient []byte, st *queueState, err error) {
		var top int64
		st = new(queueState)
		if err := rows.Scan(&recipient, &st.qid, &st.last, &st.depth, &top); err != nil {
			return nil, nil, err
		}
		if top > st.last {
			st.depth += top - st.last
			st.last, st.dirty = top, true
		}
		return recipient, st, nil
	}); err != nil {
		return nil, fmt.Errorf("load queues: %w", err)
	}
	created := false
	for i, r := range recipients {
		if out[i] = c.get(r); out[i] == nil && !created {
			if err := c.load(ctx, tx, s, queueCreate, list, func(rows *sql.Rows) ([]byte, *queueState, error) {
				var recipient []byte
				st := new(queueState)
				return recipient, st, rows.Scan(&recipient, &st.qid)
			}); err != nil {
				return nil, fmt.Errorf("create queues: %w", err)
			}
			created = true
			out[i] = c.get(r)
		}
		if out[i] == nil {
			return nil, fmt.Errorf("queue of %x neither found nor created", r)
		}
	}
	return out, nil
}

// load runs query on list and puts the queues scan reads from its rows.
func (c *queueCache) load(ctx context.Context, tx *sql.Tx, s *Store, query, list string,
	scan func(*sql.Rows) ([]byte, *queueState, error)) error {
	rows, err := s.query(ctx, tx, query, list)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, st, err := scan(rows)
		if err != nil {
			return err
		}
		c.put(r, st)
	}
	return rows.Err()
}
