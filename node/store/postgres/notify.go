package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// Reconnection delays of Notifications: the first retry waits
// minListenBackoff, each further one twice as long, up to maxListenBackoff.
const (
	minListenBackoff = 100 * time.Millisecond
	maxListenBackoff = 10 * time.Second
)

// SweepInterval is how often Notifications sweeps while it listens: it
// calls fn for each recipient of a message stored in the last
// sweepLookbacks intervals. A direct Enqueue announced after its commit (see
// announce.go) loses its notification if its node dies in between; the
// sweep bounds how long such a message waits for a subscriber on another
// node, and costs one indexed query (messages_age), not a read of every
// subscription's queue.
const SweepInterval = time.Minute

// sweepLookbacks is how many intervals a sweep looks back: a sweep that
// failed, a long transaction and a writer whose clock runs up to a few
// intervals behind are covered by a later one.
const sweepLookbacks = 5

// sweepMax bounds the recipients a sweep names; with more, or when its
// query fails, it calls fn(nil), which wakes every subscription.
const sweepMax = 100_000

// listenAppName names the LISTEN connections in pg_stat_activity.
const listenAppName = "qpnode listen"

// Notifications implements store.Notifier. It holds one connection of its
// own (outside the pool) that LISTENs on the channel every write sends to
// (see "Cross-node push" in the package documentation) and calls fn for
// each recipient named, until ctx ends (it then returns nil) or the store
// is closed (store.ErrClosed). A lost connection is logged and opened again
// after a delay growing from 100ms to 10s; fn(nil) is called each time
// listening starts, the first time included, because messages stored while
// nobody listened were not announced; and every SweepInterval fn is called
// for the recipients of recent messages, because a node that died between
// a commit and its announcement never sent it.
// fn is called one call at a time.
func (s *Store) Notifications(ctx context.Context, fn func(recipient []byte)) error {
	const op = "notifications"
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("postgres: %s: %w", op, store.ErrClosed)
	}
	s.listeners.Add(1)
	s.mu.RUnlock()
	defer s.listeners.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	closed := func() bool { return s.closing.Err() != nil }

	// fn is called one call at a time: by the listener and by the sweep.
	var fnMu sync.Mutex
	fn = serialized(&fnMu, fn)
	go s.sweepLoop(ctx, fn)

	backoff := minListenBackoff
	for {
		listened, err := s.listenOnce(ctx, fn)
		if closed() {
			return fmt.Errorf("postgres: %s: %w", op, store.ErrClosed)
		}
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = minListenBackoff
		}
		s.log.Warn("listening for notifications failed; retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if closed() {
				return fmt.Errorf("postgres: %s: %w", op, store.ErrClosed)
			}
			return nil
		}
		backoff = min(2*backoff, maxListenBackoff)
	}
}

// serialized returns fn called under mu.
func serialized(mu *sync.Mutex, fn func(recipient []byte)) func(recipient []byte) {
	return func(recipient []byte) {
		mu.Lock()
		defer mu.Unlock()
		fn(recipient)
	}
}

// sweepLoop sweeps every s.sweepEvery until ctx ends.
func (s *Store) sweepLoop(ctx context.Context, fn func(recipient []byte)) {
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.sweep(ctx, fn)
		case <-ctx.Done():
			return
		}
	}
}

// sweep calls fn for each recipient of a message stored in the last
// sweepLookbacks intervals, or fn(nil) if it cannot name them all.
func (s *Store) sweep(ctx context.Context, fn func(recipient []byte)) {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	since := s.now().Add(-sweepLookbacks * s.sweepEvery)
	rows, err := s.pool.Query(qctx, `SELECT DISTINCT recipient FROM messages WHERE enqueued_at > $1 LIMIT $2`, since, sweepMax+1)
	var recipients [][]byte
	if err == nil {
		recipients, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil || len(recipients) > sweepMax {
		if err != nil {
			s.log.Warn("sweep for unannounced messages failed; waking every subscription", "err", err)
		}
		fn(nil)
		return
	}
	for _, r := range recipients {
		fn(r)
	}
}

// listenOnce connects, LISTENs, calls fn(nil), then calls fn for each
// notified recipient until the connection fails or ctx ends. listened
// reports whether it got as far as listening.
func (s *Store) listenOnce(ctx context.Context, fn func(recipient []byte)) (listened bool, err error) {
	cfg := s.listen.Copy()
	cfg.RuntimeParams["application_name"] = listenAppName
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	ccancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn.Close(cctx)
		ccancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	s.log.Debug("listening for notifications", "channel", notifyChannel)
	fn(nil)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		if n.Channel != notifyChannel {
			continue
		}
		for _, h := range strings.Split(n.Payload, ",") {
			r, err := hex.DecodeString(h)
			if err != nil || len(r) != store.IdentityKeySize {
				s.log.Warn("ignoring a malformed notification", "channel", n.Channel, "from_pid", n.PID)
				continue
			}
			fn(r)
		}
	}
}
