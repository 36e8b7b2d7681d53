package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
)

// MaxClientMsgIDSize bounds a client message id, which a store keeps in its
// deduplication tables for DedupRetention.
const MaxClientMsgIDSize = 256

// The argument checks every backend makes before it touches its database,
// so that all of them refuse the same input with the same ErrInvalid.

// CheckKey reports ErrInvalid unless key is an identity key; what names the
// argument in the error.
func CheckKey(what string, key []byte) error {
	if len(key) != IdentityKeySize {
		return fmt.Errorf("%s is %d bytes, want %d: %w", what, len(key), IdentityKeySize, ErrInvalid)
	}
	return nil
}

// CheckSender reports ErrInvalid unless sender is empty (anonymous) or an
// identity key.
func CheckSender(sender []byte) error {
	if len(sender) != 0 && len(sender) != IdentityKeySize {
		return fmt.Errorf("sender is %d bytes, want 0 or %d: %w", len(sender), IdentityKeySize, ErrInvalid)
	}
	return nil
}

// CheckClientMsgID reports ErrInvalid for a client message id longer than
// MaxClientMsgIDSize.
func CheckClientMsgID(id []byte) error {
	if len(id) > MaxClientMsgIDSize {
		return fmt.Errorf("client message id is %d bytes, limit %d: %w", len(id), MaxClientMsgIDSize, ErrInvalid)
	}
	return nil
}

// CheckGroupID reports ErrInvalid unless id is 1 to MaxGroupIDSize bytes.
func CheckGroupID(id []byte) error {
	if len(id) == 0 || len(id) > MaxGroupIDSize {
		return fmt.Errorf("group id is %d bytes, want 1 to %d: %w", len(id), MaxGroupIDSize, ErrInvalid)
	}
	return nil
}

// CheckRecipients reports ErrInvalid unless every recipient is an identity
// key listed once; what names the list in the error.
func CheckRecipients(what string, rs [][]byte) error {
	seen := make(map[[IdentityKeySize]byte]bool, len(rs))
	for i, r := range rs {
		if err := CheckKey(fmt.Sprintf("%s[%d]", what, i), r); err != nil {
			return err
		}
		k := [IdentityKeySize]byte(r)
		if seen[k] {
			return fmt.Errorf("%s lists %x twice: %w", what, r, ErrInvalid)
		}
		seen[k] = true
	}
	return nil
}

// CheckCreateGroup checks CreateGroup's arguments: the roster lists the
// creator, every entry an identity key once, the view is not empty and the
// epoch fits a signed 64-bit column.
func CheckCreateGroup(groupID, creator []byte, epoch uint64, view []byte, roster [][]byte) error {
	err := errors.Join(CheckGroupID(groupID), CheckKey("creator", creator), CheckRecipients("roster", roster))
	switch {
	case err != nil:
		return err
	case len(view) == 0:
		return fmt.Errorf("empty view: %w", ErrInvalid)
	case epoch >= math.MaxInt64:
		return fmt.Errorf("epoch %d out of range: %w", epoch, ErrInvalid)
	case !slices.ContainsFunc(roster, func(m []byte) bool { return bytes.Equal(m, creator) }):
		return fmt.Errorf("roster does not list the creator: %w", ErrInvalid)
	}
	return nil
}
