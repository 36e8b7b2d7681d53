package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// This file makes disappearing messages disappear: a message with an
// expiry (content.go) is deleted from the history, with its events and
// receipts, at that time, on the clock Config.Now. The store overwrites
// the deleted text in the file and truncates its log (scrub), so it
// cannot be read back from the state folder either.

// ExpireMessages deletes the messages whose time is up and reports how
// many went, and when the next one is due (zero: none is). Without a
// message due it writes nothing.
func (b *Backend) ExpireMessages(ctx context.Context) (int, time.Time, error) {
	next, err := b.nextExpiry(ctx)
	if err != nil || next.IsZero() || next.After(b.cfg.Now()) {
		return 0, next, err
	}
	var n int
	err = b.update(ctx, func(tx *store.Tx) (err error) {
		n, err = tx.ExpireMessages(b.cfg.Now())
		return err
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("backend: expire messages: %w", err)
	}
	if n > 0 {
		b.log.Info("disappearing messages deleted", "count", n)
	}
	next, err = b.nextExpiry(ctx)
	return n, next, err
}

func (b *Backend) nextExpiry(ctx context.Context) (time.Time, error) {
	var next time.Time
	err := b.view(ctx, func(tx *store.Tx) (err error) { next, _, err = tx.NextExpiry(); return })
	if err != nil {
		return time.Time{}, fmt.Errorf("backend: expire messages: %w", err)
	}
	return next, nil
}

// expireLoop runs ExpireMessages when the next message is due, and again
// after every change (a new message may be due sooner), until ctx ends.
func (b *Backend) expireLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		changed := b.Changed()
		_, next, err := b.ExpireMessages(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("expire messages", "err", err)
			next = b.cfg.Now().Add(time.Minute)
		}
		t.Stop()
		var due <-chan time.Time
		if !next.IsZero() {
			t.Reset(max(next.Sub(b.cfg.Now()), 10*time.Millisecond))
			due = t.C
		}
		select {
		case <-changed:
			// A busy stream changes the store for every message; its
			// changes are looked at together, expireSettle apart, so that
			// the loop costs a read per expireSettle and not one per
			// message. A message disappears at most that much later.
			select {
			case <-time.After(expireSettle):
			case <-ctx.Done():
				return
			}
		case <-due:
		case <-ctx.Done():
			return
		}
	}
}

// expireSettle is how long the expiry loop lets changes gather before it
// looks for the next message due.
const expireSettle = 100 * time.Millisecond
