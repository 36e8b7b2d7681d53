package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the device half of a Store: each user's current signed
// device list, the devices revoked for ever, and the link slots through
// which a new device is linked. The store keeps lists as opaque bytes;
// the node parses and checks them (internal/devid), as it does views.

var (
	// ErrStaleVersion: a device list whose version is not above the
	// stored one.
	ErrStaleVersion = errors.New("store: device list version is not above the stored one")
	// ErrNoSlot: a link slot never opened, closed or expired.
	ErrNoSlot = errors.New("store: no such link slot")
	// ErrSlotExists: a link slot id opened before (and not yet expired).
	ErrSlotExists = errors.New("store: link slot exists")
	// ErrBoxFull: a link slot's box that already holds a payload.
	ErrBoxFull = errors.New("store: link box already filled")
)

// Link slot boxes.
const (
	BoxRequest  = 0 // new device to opener
	BoxResponse = 1 // opener to new device
)

// SlotIDSize is the length of a link slot id.
const SlotIDSize = 32

// Revocation is what a new device list takes away: Devices are revoked
// for ever and their queues dropped; Directories are the KeyPackage
// directories (per device and cipher suite) dropped with them.
type Revocation struct {
	Devices     [][]byte
	Directories [][]byte
}

// DeviceListCheck decides on a new list given the stored one (nil: the
// user has none) inside PutDeviceList's transaction, with the user's list
// locked, and names what it revokes. Its error refuses the list and is
// returned unwrapped in the chain.
type DeviceListCheck func(prev []byte) (Revocation, error)

// LinkSlot is an open link slot.
type LinkSlot struct {
	Opener   []byte
	Request  []byte // nil: not yet put
	Response []byte // nil: not yet put
	Expires  time.Time
}

// Devices is the device half of a Store.
type Devices interface {
	// PutDeviceList stores list, of version, as user's current device
	// list naming devices, if version is above the stored list's (else
	// ErrStaleVersion, and check does not run) and check accepts it. In
	// the same transaction every device check names is revoked: marked
	// for ever, its queue emptied and the KeyPackages of its directories
	// deleted.
	PutDeviceList(ctx context.Context, user []byte, version uint64, list []byte, devices [][]byte, check DeviceListCheck) error

	// DeviceList returns user's current list and its version, or a nil
	// list when it never published one.
	DeviceList(ctx context.Context, user []byte) (list []byte, version uint64, err error)

	// DeviceUsers returns the users whose current list names device.
	DeviceUsers(ctx context.Context, device []byte) ([][]byte, error)

	// Revoked reports whether device was revoked.
	Revoked(ctx context.Context, device []byte) (bool, error)

	// RevokedCount reports how many devices user's lists have revoked.
	RevokedCount(ctx context.Context, user []byte) (int, error)

	// OpenSlot opens link slot id (SlotIDSize bytes) for opener until
	// expires. An opener with maxOpen unexpired slots gets ErrLimit; an
	// id open before ErrSlotExists.
	OpenSlot(ctx context.Context, id, opener []byte, expires time.Time, maxOpen int) error

	// Slot returns an unexpired slot, or ErrNoSlot.
	Slot(ctx context.Context, id []byte) (LinkSlot, error)

	// PutSlotBox fills box (BoxRequest or BoxResponse) of an unexpired
	// slot once: ErrNoSlot for none, ErrBoxFull for a filled box. Who may
	// is the node's to check.
	PutSlotBox(ctx context.Context, id []byte, box int, payload []byte) error

	// CloseSlot removes slot id if opener opened it (ErrNoSlot otherwise).
	CloseSlot(ctx context.Context, id, opener []byte) error

	// ExpireSlots removes the slots that expired before now and returns
	// how many.
	ExpireSlots(ctx context.Context, now time.Time) (int, error)

	// DeviceStates returns, in one lookup, the state of each of keys (at
	// most MaxDeviceStates, each IdentityKeySize bytes), in their order.
	DeviceStates(ctx context.Context, keys [][]byte) ([]DeviceState, error)
}

// CheckSlot reports ErrInvalid for a slot id of the wrong size or an
// unknown box.
func CheckSlot(id []byte, box int) error {
	if len(id) != SlotIDSize {
		return fmt.Errorf("slot id has %d bytes, want %d: %w", len(id), SlotIDSize, ErrInvalid)
	}
	if box != BoxRequest && box != BoxResponse {
		return fmt.Errorf("box %d: %w", box, ErrInvalid)
	}
	return nil
}

// DeviceState is what the leaf rule needs of a device key: whether it was
// revoked, and the users whose current list names it (sorted).
type DeviceState struct {
	Revoked bool
	Users   [][]byte
}

// MaxDeviceStates bounds the keys of one DeviceStates call.
const MaxDeviceStates = 4096

// CheckDeviceStateKeys reports ErrInvalid for too many keys or a key of
// the wrong size.
func CheckDeviceStateKeys(keys [][]byte) error {
	if len(keys) > MaxDeviceStates {
		return fmt.Errorf("%d keys, limit %d: %w", len(keys), MaxDeviceStates, ErrInvalid)
	}
	for _, k := range keys {
		if err := CheckKey("device", k); err != nil {
			return err
		}
	}
	return nil
}
