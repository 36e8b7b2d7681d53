package store

import (
	"errors"
	"fmt"
)

// ErrStaleEpoch matches (with errors.Is) every *StaleEpochError.
var ErrStaleEpoch = errors.New("store: stale epoch")

// ErrNotMember: the sender of a commit or group message is not in the
// group's roster, or the group was never created (see "Rosters" in the
// package documentation).
var ErrNotMember = errors.New("store: sender is not in the group's roster")

// ErrGroupExists: CreateGroup for a group id claimed before.
var ErrGroupExists = errors.New("store: group id already claimed")

// GroupView is a group's stored public state, as the callbacks of
// SubmitCommit and FanOut see it.
type GroupView struct {
	Epoch uint64 // the epoch the next commit must name
	View  []byte // the encoded view (opaque to the store)
}

// CommitVerdict is what the node decided on an accepted commit.
type CommitVerdict struct {
	View              []byte   // the view of the new epoch
	Roster            [][]byte // the members after the commit (distinct identity keys)
	Recipients        [][]byte // who gets the commit (distinct identity keys)
	WelcomeRecipients [][]byte // who gets the Welcome (distinct identity keys; empty without one)
}

// CommitCheck decides on a commit from the group's current view; it runs
// inside the store's transaction. An error refuses the commit.
type CommitCheck func(current GroupView) (CommitVerdict, error)

// ViewUpdate returns the view after a fanned-out handshake message; it
// runs inside the store's transaction. An error refuses the message.
type ViewUpdate func(current GroupView) ([]byte, error)

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

// FanOutResult is the store's answer to a FanOut.
type FanOutResult struct {
	GroupSeq   uint64   // the message's per-group sequence number
	Duplicate  bool     // a resubmission: nothing was stored this time
	Recipients [][]byte // who got it (nil for a duplicate)
}

// FanOutItem is one message of a FanOutBatch: FanOut's arguments but the
// sender, which is the batch's.
type FanOutItem struct {
	GroupID     []byte
	ClientMsgID []byte
	Payload     []byte
	Update      ViewUpdate // nil for an application message
}

// MaxFanOutBatch bounds the items of one FanOutBatch.
const MaxFanOutBatch = 256

// CheckFanOutBatch checks what FanOutBatch checks before its transaction.
func CheckFanOutBatch(sender []byte, items []FanOutItem) error {
	if len(items) > MaxFanOutBatch {
		return fmt.Errorf("%d items in a batch, limit %d: %w", len(items), MaxFanOutBatch, ErrInvalid)
	}
	return CheckKey("sender", sender)
}

// GroupState is what the node knows of a group.
type GroupState struct {
	Epoch   uint64 // the current epoch (the one the next commit must name)
	LastSeq uint64 // the last per-group sequence number handed out (0: none)
	Members int    // the size of the roster
}

// CheckVerdict checks the lists of a CommitVerdict.
func CheckVerdict(v *CommitVerdict, welcome []byte) error {
	err := errors.Join(CheckRecipients("roster", v.Roster), CheckRecipients("recipients", v.Recipients),
		CheckRecipients("welcome recipients", v.WelcomeRecipients))
	switch {
	case err != nil:
		return err
	case len(v.View) == 0:
		return fmt.Errorf("verdict without a view: %w", ErrInvalid)
	case len(v.Roster) == 0:
		return fmt.Errorf("verdict with an empty roster: %w", ErrInvalid)
	case (len(welcome) == 0) != (len(v.WelcomeRecipients) == 0):
		return fmt.Errorf("welcome of %d bytes for %d recipients: %w", len(welcome), len(v.WelcomeRecipients), ErrInvalid)
	}
	return nil
}
