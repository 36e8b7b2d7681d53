package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
)

// A person's device list only moves forward. The daemon keeps the highest
// version it accepted per person (the node's answers, the lists it
// published itself, the list of a link response) and refuses a lower one:
// an old list is still signed by the user key, so only its version shows
// a node replaying it to re-admit a revoked device or hide a new one. The
// implicit list (none published) is version 0.

// ErrDeviceListRollback: the node handed out a device list older than one
// this daemon accepted before.
var ErrDeviceListRollback = errors.New("device list older than one accepted before")

// acceptListVersion refuses l when its version is below the highest
// accepted for its user, and else raises that to l's version, in one
// transaction.
func (b *Backend) acceptListVersion(ctx context.Context, l *devid.DeviceList) error {
	var highest uint64
	err := b.update(ctx, func(tx *store.Tx) error {
		v, err := tx.DeviceListVersion(l.User)
		if err != nil {
			return err
		}
		if l.Version < v {
			highest = v
			return nil
		}
		return tx.NoteDeviceListVersion(l.User, l.Version)
	})
	if err != nil {
		return fmt.Errorf("backend: device list version: %w", err)
	}
	if highest > 0 {
		b.log.Warn("device list rollback refused", "user", FormatKey(l.User), "version", l.Version, "accepted", highest)
		return fmt.Errorf("%w: %w: %w: the node handed out version %d of the device list of %s, version %d was accepted before",
			ErrIdentityMismatch, ErrDeviceList, ErrDeviceListRollback, l.Version, FormatKey(l.User), highest)
	}
	return nil
}

// notePublished raises the accepted version to a list this device has
// just published (the node stored it, so nothing older counts any more).
func (b *Backend) notePublished(ctx context.Context, l *devid.DeviceList) {
	if err := b.acceptListVersion(ctx, l); err != nil {
		b.log.Error("note published device list", "version", l.Version, "err", err)
	}
}
