package postgres

import (
	"bytes"
	"context"
	"time"
)

// A direct Enqueue with others in flight announces its recipient after its
// commit, not inside its transaction: PostgreSQL serializes the commits of
// every transaction that notified on a database-wide lock held until the
// commit's log flush is done, so notifying inside each of many concurrent
// enqueues allowed one flush per enqueue and no group commit. The
// announcer sends the recipients of the commits that came in meanwhile
// together, from a transaction of its own that does not wait for a flush
// (a notification is only a wake-up, see "Cross-node push": one lost in a
// crash at most delays a message). An enqueue alone notifies in its own
// statement, which costs it nothing extra; leaving it to the announcer
// would add a transaction for every enqueue.

// announceQueue bounds the recipients waiting to be announced; a writer
// finding it full waits.
const announceQueue = 4096

// announceMax is the most recipients one announcing statement names.
const announceMax = 1000

// announceTimeout bounds one announcing statement.
const announceTimeout = 10 * time.Second

// announceCloseGrace is how long Close lets the last announcements take.
const announceCloseGrace = 2 * time.Second

// announceSQL sends the notifications naming the recipients $2, up to
// notifyBatch a notification, without waiting for its commit's flush.
const announceSQL = `
SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, string_agg(encode(r, 'hex'), ','))
FROM (SELECT r, (row_number() OVER () - 1) / $3 AS batch FROM unnest($2::bytea[]) AS r) AS t
GROUP BY batch`

// announce queues a copy of recipient for the announcer (the caller's
// slice may be reused once the call returns). The caller holds the
// store's read lock, so the announcer is running.
func (s *Store) announce(recipient []byte) {
	s.announced <- bytes.Clone(recipient)
}

// announceLoop sends what announce queues until Close, then what is left.
func (s *Store) announceLoop() {
	defer close(s.announceDone)
	// Announcements still go out while Close drains them, but for at most
	// announceCloseGrace once it starts: a database that stopped answering
	// does not hold Close for an announceTimeout per batch. What is not
	// announced then is found by the other nodes' sweeps.
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(s.closing, func() {
		t := time.AfterFunc(announceCloseGrace, cancel)
		<-base.Done()
		t.Stop()
	})()
	for {
		select {
		case r := <-s.announced:
			s.sendAnnouncements(base, r)
		case <-s.done:
			for {
				select {
				case r := <-s.announced:
					if base.Err() != nil {
						continue
					}
					s.sendAnnouncements(base, r)
				default:
					return
				}
			}
		}
	}
}

// sendAnnouncements announces first and whatever else is queued, up to
// announceMax recipients, each once, in one statement.
func (s *Store) sendAnnouncements(base context.Context, first []byte) {
	keys := [][]byte{first}
	seen := map[string]bool{string(first): true}
more:
	for len(keys) < announceMax {
		select {
		case r := <-s.announced:
			if !seen[string(r)] {
				seen[string(r)] = true
				keys = append(keys, r)
			}
		default:
			break more
		}
	}
	ctx, cancel := context.WithTimeout(base, announceTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, announceSQL, notifyChannel, keys, notifyBatch)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		s.log.Warn("announcing new messages to other nodes failed", "recipients", len(keys), "err", err)
	}
}
