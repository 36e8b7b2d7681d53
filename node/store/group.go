package store

import (
	"errors"
	"fmt"
)

// ErrStaleEpoch matches (with errors.Is) every *StaleEpochError.
var ErrStaleEpoch = errors.New("store: stale epoch")

// ErrNotMember: the sender of a commit or group message is not in the
// group's roster (see "Groups" in the package documentation).
var ErrNotMember = errors.New("store: sender is not in the group's roster")

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
