package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/link"
)

// This file is identity backup and restore: the identity key sealed under
// a passphrase (package devid), so that a person whose last machine is
// lost starts again elsewhere with the same identity, and so the same
// safety numbers. Only the key travels: groups, contacts and history stay
// on the old machine.

// ErrIdentityExists: a restore into a state that already has another
// identity.
var ErrIdentityExists = errors.New("the state folder already has another identity")

// backupKDF is the Argon2id cost of exports (a variable for tests).
var backupKDF = devid.DefaultKDF

// ExportIdentity returns the identity sealed under passphrase, and its
// public key. The caller wipes passphrase.
func (b *Backend) ExportIdentity(ctx context.Context, passphrase []byte) ([]byte, ed25519.PublicKey, error) {
	id, err := b.identity(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer id.Wipe()
	if !id.Primary() {
		return nil, nil, fmt.Errorf("export identity: %w", ErrNotPrimaryDevice)
	}
	text, err := devid.SealBackup(devid.Identity{Key: id.UserKey, Created: id.CreatedAt}, passphrase, backupKDF)
	if errors.Is(err, devid.ErrWeakPassphrase) {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if err != nil {
		return nil, nil, opError("export identity", err)
	}
	user := append(ed25519.PublicKey{}, id.UserPublicKey()...)
	b.log.Info("identity exported", "identity", FormatKey(user))
	return text, user, nil
}

// RestoreIdentity opens a backup and makes this state a new device of its
// identity, before Run: a new device key D certified by the restored user
// key U, which this device keeps (it is primary), published in U's device
// list at the node (the old devices stay in it until revoked), so that
// contacts see the same person with the same safety numbers. Without a
// node configured (tests) the state takes U itself as its device key, as
// before devices existed. Restoring into a state of the same person does
// nothing; another person's is ErrIdentityExists. A wrong passphrase
// matches devid.ErrWrongPassphrase, a damaged file devid.ErrBackupFormat.
// The caller wipes passphrase.
func (b *Backend) RestoreIdentity(ctx context.Context, backup, passphrase []byte) (ed25519.PublicKey, error) {
	id, err := devid.OpenBackup(backup, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	defer id.Wipe()
	pub := id.Key.Public().(ed25519.PublicKey)
	var have store.Identity
	err = b.view(ctx, func(tx *store.Tx) (err error) { have, err = tx.Identity(); return })
	if err == nil {
		defer have.Wipe()
		if !have.UserPublicKey().Equal(pub) {
			return nil, fmt.Errorf("%w: %s, backup holds %s", ErrIdentityExists, FormatKey(have.UserPublicKey()), FormatKey(pub))
		}
		return pub, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, opError("restore identity", err)
	}
	sid := store.Identity{PrivateKey: id.Key, CreatedAt: id.Created}
	if b.cfg.NodeAddr != "" {
		dev, chain, err := b.restoreDevice(ctx, id)
		if err != nil {
			return nil, err
		}
		defer clear(dev)
		if sid, err = linkedIdentity(pub, dev, chain, id.Key, time.Now()); err != nil {
			return nil, err
		}
		defer sid.Wipe()
	}
	err = b.update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Identity(); err == nil {
			return ErrIdentityExists
		}
		return tx.PutIdentity(sid)
	})
	if err != nil {
		return nil, opError("restore identity", err)
	}
	b.log.Info("identity restored as a new device", "identity", FormatKey(pub), "device", FormatKey(sid.PublicKey()))
	b.setState(StateDisconnected, "", false)
	b.markRegistered()
	return pub, nil
}

// restoreDevice makes the new device of a restored identity: its key D,
// the chain U issues for it, and U's device list with D added, published
// over D's connection.
func (b *Backend) restoreDevice(ctx context.Context, id devid.Identity) (ed25519.PrivateKey, [][]byte, error) {
	user, err := devid.NewUser(id.Key, time.Now(), 0)
	if err != nil {
		return nil, nil, fmt.Errorf("backend: restore: %w", err)
	}
	defer user.Wipe()
	dpub, dev, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("backend: device key: %w", err)
	}
	name, _ := os.Hostname()
	if len(name) > link.MaxDeviceName {
		name = name[:link.MaxDeviceName]
	}
	chain, err := user.IssueDevice(dpub, name, time.Now(), 0)
	if err != nil {
		clear(dev)
		return nil, nil, fmt.Errorf("backend: restore: certify the device: %w", err)
	}
	// Over the new device's own connection (not yet registered; the
	// node takes a list signed by its user from any connection), not
	// U's: U may be a device revoked since, after an earlier restore.
	c, err := b.dialDevice(ctx, dev)
	if err != nil {
		clear(dev)
		return nil, nil, fmt.Errorf("%w: restore publishes the new device at the node: %w", ErrNotConnected, err)
	}
	defer c.Close()
	l, err := b.currentDeviceList(ctx, c, user.PublicKey())
	if err != nil {
		clear(dev)
		return nil, nil, err
	}
	if len(l.Devices) >= devid.MaxDevices {
		clear(dev)
		return nil, nil, fmt.Errorf("%w: %d devices: revoke one first", ErrTooManyDevices, len(l.Devices))
	}
	next := &devid.DeviceList{User: user.PublicKey(), Version: l.Version + 1, Created: time.Now(), Devices: append(slices.Clone(l.Devices), dpub)}
	signed, err := next.Sign(user.Key)
	if err == nil {
		_, err = c.PublishDevices(ctx, signed)
	}
	if err != nil {
		clear(dev)
		return nil, nil, fmt.Errorf("%w: restore: publish the device list: %w", ErrNotConnected, err)
	}
	b.notePublished(ctx, next)
	b.log.Info("new device published", "device", FormatKey(dpub), "list_version", next.Version)
	return dev, chain, nil
}
