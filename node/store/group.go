package store

import (
	"errors"
	"fmt"
)

// Group delivery.
//
// The node orders each group's handshake: it accepts exactly one commit per
// (group, epoch), the first to arrive, and answers every other commit for an
// epoch that is not the group's current one with a *StaleEpochError naming
// the current epoch. A client that gets one drops its pending commit, applies
// the winning commit (already in its queue) and tries again.
//
// The node learns of a group with its first commit, at whatever epoch that
// commit names: a creator may commit alone (with nobody to deliver to) before
// it first adds members. From then on the group's epoch advances by one with
// each accepted commit. FanOut of application messages does not check or
// change the epoch (members keep old epochs' secrets for a while), but a
// FanOut to a group not yet seen does not fix its epoch either.
//
// Every commit and application message gets a per-group sequence number,
// strictly increasing from 1, giving the group's messages a total order.
// Both operations store the messages of every recipient in one transaction:
// all recipients get the message, or (on any error) none. A full recipient
// queue refuses the whole operation with ErrLimit rather than leave that
// member behind.
//
// Both are idempotent on (group, sender, client message id): a resubmission
// returns the original answer with Duplicate set and stores nothing, even if
// the group has moved on. Reusing an id for different content is ErrInvalid.
// An empty client message id is never deduplicated.

// ErrStaleEpoch matches (with errors.Is) every *StaleEpochError.
var ErrStaleEpoch = errors.New("store: stale epoch")

// MaxGroupIDSize is the longest group id the store accepts (MLS group ids are
// opaque<V>; ours are 16 random bytes).
const MaxGroupIDSize = 255

// StaleEpochError reports a commit for an epoch other than the group's
// current one. Backends wrap it; find it with errors.As.
type StaleEpochError struct {
	Epoch   uint64 // the epoch the refused commit named
	Current uint64 // the group's current epoch: the only one a commit may name now
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("store: stale epoch: commit for epoch %d, group is at epoch %d", e.Epoch, e.Current)
}

// Is makes errors.Is(err, ErrStaleEpoch) true.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// CommitResult is the node's answer to an accepted commit.
type CommitResult struct {
	Epoch     uint64 // the epoch the commit was accepted at; the group is now at Epoch+1 (or later)
	GroupSeq  uint64 // the commit's per-group sequence number
	Duplicate bool   // a resubmission of an accepted commit: nothing was stored this time
}

// GroupState is what the node knows of a group.
type GroupState struct {
	Committed bool   // whether a commit for the group was ever accepted
	Epoch     uint64 // the current epoch (the one the next commit must name), when Committed
	LastSeq   uint64 // the last per-group sequence number handed out (0: none)
}
