package backend

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
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

// RestoreIdentity opens a backup and makes its key this state's identity,
// before Run. Restoring the identity the state already has does nothing;
// another one is ErrIdentityExists. A wrong passphrase matches
// devid.ErrWrongPassphrase, a damaged file devid.ErrBackupFormat. The
// caller wipes passphrase.
func (b *Backend) RestoreIdentity(ctx context.Context, backup, passphrase []byte) (ed25519.PublicKey, error) {
	id, err := devid.OpenBackup(backup, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	defer id.Wipe()
	pub := id.Key.Public().(ed25519.PublicKey)
	created := false
	err = b.update(ctx, func(tx *store.Tx) error {
		have, err := tx.Identity()
		if err == nil {
			defer have.Wipe()
			if !have.UserPublicKey().Equal(pub) {
				return fmt.Errorf("%w: %s, backup holds %s", ErrIdentityExists, FormatKey(have.UserPublicKey()), FormatKey(pub))
			}
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		created = true
		return tx.PutIdentity(store.Identity{PrivateKey: id.Key, CreatedAt: id.Created})
	})
	if err != nil {
		return nil, opError("restore identity", err)
	}
	if created {
		b.log.Info("identity restored", "identity", FormatKey(pub))
		b.setState(StateDisconnected, "", false)
		b.markRegistered()
	}
	return pub, nil
}
