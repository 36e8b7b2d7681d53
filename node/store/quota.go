package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrQuota: strangers' share of a recipient's queue is used up.
var ErrQuota = errors.New("store: strangers' share of the queue is used up")

// Defaults a node uses for the quota fields of Limits (the stores
// themselves leave a zero field unbounded).
const (
	DefaultGroupReserve        = 2000
	DefaultMaxStrangerMessages = 200
	DefaultMaxStrangerBytes    = 8 << 20
)

// Janitor is the housekeeping half of a Store.
type Janitor interface {
	// Expire deletes every message enqueued before cutoff and returns how
	// many it deleted.
	Expire(ctx context.Context, cutoff time.Time) (int, error)

	// DiskUsage reports the bytes the store's data takes (the database
	// file without its free pages for SQLite, the database's size for
	// PostgreSQL).
	DiskUsage(ctx context.Context) (int64, error)

	// LastResortKeyPackage returns identity's last-resort package without
	// touching its consumable ones, or ErrNoKeyPackage.
	LastResortKeyPackage(ctx context.Context, identity []byte) ([]byte, error)
}

// CheckQuotas reports ErrInvalid for negative quotas or a group reserve
// that leaves direct messages no room (maxQueueDepth is the depth in
// effect, defaults applied).
func (l Limits) CheckQuotas(maxQueueDepth int) error {
	if l.GroupReserve < 0 || l.MaxStrangerMessages < 0 || l.MaxStrangerBytes < 0 {
		return fmt.Errorf("negative quota %+v: %w", l, ErrInvalid)
	}
	if l.GroupReserve >= maxQueueDepth {
		return fmt.Errorf("group reserve %d leaves no room in a queue of %d: %w", l.GroupReserve, maxQueueDepth, ErrInvalid)
	}
	return nil
}

// DirectRoom checks the quotas of a direct message to recipient (see
// "Quotas and expiry"); stranger says whether its sender is a stranger
// there. depth, strangers and strangerBytes are the queue's state
// after the message was counted in.
func (l Limits) DirectRoom(recipient []byte, depth, strangers, strangerBytes int64, stranger bool) error {
	if r := l.GroupReserve; r > 0 && depth > int64(l.MaxQueueDepth-r) {
		return fmt.Errorf("queue of %x holds %d messages; the last %d of its %d are kept for group traffic: %w",
			recipient, depth-1, r, l.MaxQueueDepth, ErrLimit)
	}
	if !stranger {
		return nil
	}
	if m := l.MaxStrangerMessages; m > 0 && strangers > int64(m) {
		return fmt.Errorf("queue of %x holds %d messages from senders outside its groups (limit %d): %w",
			recipient, strangers-1, m, ErrQuota)
	}
	if m := l.MaxStrangerBytes; m > 0 && strangerBytes > m {
		return fmt.Errorf("queue of %x would hold %d bytes from senders outside its groups (limit %d): %w",
			recipient, strangerBytes, m, ErrQuota)
	}
	return nil
}

// StrangerWithoutLookup decides whether sender is a stranger to recipient
// when no roster lookup is needed: with no strangers' quota nobody counts
// as one, an anonymous sender always does, and a sender is no stranger to
// itself. decided is false when a backend must look at the rosters.
func (l Limits) StrangerWithoutLookup(recipient, sender []byte) (stranger, decided bool) {
	switch {
	case l.MaxStrangerMessages <= 0 && l.MaxStrangerBytes <= 0:
		return false, true
	case len(sender) == 0:
		return true, true
	case string(sender) == string(recipient):
		return false, true
	}
	return false, false
}
