package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// This file keeps the user's contacts: people known by identity key, with
// an optional local name, a verified mark (safety.go), or a block. The
// consent rules (consent.go) ask it who may invite the user, and the
// receiver asks it whose traffic to drop.

// ErrContactNotFound: no contact matches the given key or name.
var ErrContactNotFound = errors.New("contact not found")

// MaxContactName bounds a contact's name in bytes.
const MaxContactName = 64

// Contact is a contact or a blocked identity.
type Contact = store.Contact

func (b *Backend) isBlocked(id []byte) bool {
	b.blockMu.RLock()
	defer b.blockMu.RUnlock()
	return b.blocked[string(id)]
}

func (b *Backend) setBlocked(id []byte, on bool) {
	b.blockMu.Lock()
	defer b.blockMu.Unlock()
	if on {
		b.blocked[string(id)] = true
	} else {
		delete(b.blocked, string(id))
	}
}

// loadBlocked fills the blocked set from the store (at New).
func (b *Backend) loadBlocked(ctx context.Context) error {
	var cs []store.Contact
	if err := b.view(ctx, func(tx *store.Tx) (err error) { cs, err = tx.Contacts(); return }); err != nil {
		return fmt.Errorf("backend: read contacts: %w", err)
	}
	for _, c := range cs {
		if c.Blocked {
			b.setBlocked(c.Identity, true)
		}
	}
	return nil
}

// isContact reports whether id is a contact (not blocked).
func isContact(tx *store.Tx, id []byte) (bool, error) {
	c, err := tx.Contact(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !c.Blocked, nil
}

// AddContact adds a contact (unblocking the identity if it was blocked)
// or renames one. When name belongs to a contact with another key, that
// contact's key changed: the old entry is replaced, the verified mark is
// not carried over, and an EventContactKeyChanged is recorded; replaced
// is the old key then.
func (b *Backend) AddContact(ctx context.Context, id ed25519.PublicKey, name string) (c Contact, replaced []byte, err error) {
	if len(id) != ed25519.PublicKeySize {
		return Contact{}, nil, fmt.Errorf("%w: identity key of %d bytes", ErrInvalidArgument, len(id))
	}
	if name != "" && !validContactName(name) {
		return Contact{}, nil, fmt.Errorf("%w: contact name %q: %s", ErrInvalidArgument, truncate(name, 80), contactNameRule)
	}
	err = b.update(ctx, func(tx *store.Tx) error {
		c = store.Contact{Identity: id, Name: name}
		switch old, err := tx.Contact(id); {
		case err == nil:
			c = old
			c.Name, c.Blocked = name, false
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if name != "" {
			switch prev, err := tx.ContactByName(name); {
			case err == nil && !bytes.Equal(prev.Identity, id):
				if err := tx.DeleteContact(prev.Identity); err != nil {
					return err
				}
				replaced = prev.Identity
				if _, err := tx.AppendEvent(store.Event{Kind: store.EventContactKeyChanged, State: name, By: prev.Identity, Member: id}); err != nil {
					return err
				}
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		return tx.PutContact(c)
	})
	if err != nil {
		return Contact{}, nil, fmt.Errorf("backend: add contact: %w", err)
	}
	b.setBlocked(id, false)
	if replaced != nil {
		b.log.Warn("contact's key changed", "name", name, "old", FormatKey(replaced), "new", FormatKey(id))
	}
	return c, replaced, nil
}

// Contacts lists contacts and blocked identities.
func (b *Backend) Contacts(ctx context.Context) ([]Contact, error) {
	var cs []Contact
	if err := b.view(ctx, func(tx *store.Tx) (err error) { cs, err = tx.Contacts(); return }); err != nil {
		return nil, fmt.Errorf("backend: contacts: %w", err)
	}
	return cs, nil
}

// RemoveContact removes a contact given by hex key or name.
func (b *Backend) RemoveContact(ctx context.Context, ref string) error {
	var c Contact
	err := b.update(ctx, func(tx *store.Tx) (err error) {
		if c, err = resolveContact(tx, ref); err != nil {
			return err
		}
		return tx.DeleteContact(c.Identity)
	})
	if err != nil {
		return fmt.Errorf("backend: remove contact: %w", err)
	}
	b.setBlocked(c.Identity, false)
	return nil
}

// Block drops everything id sends from now on and deletes its waiting
// invitations; it reports how many were deleted.
func (b *Backend) Block(ctx context.Context, id ed25519.PublicKey) (int, error) {
	if len(id) != ed25519.PublicKeySize {
		return 0, fmt.Errorf("%w: identity key of %d bytes", ErrInvalidArgument, len(id))
	}
	n := 0
	// gmu: the receiver checks the set under it, so no envelope of id is
	// applied after Block returns.
	b.gmu.Lock()
	defer b.gmu.Unlock()
	err := b.update(ctx, func(tx *store.Tx) (err error) {
		c := store.Contact{Identity: id}
		switch old, err := tx.Contact(id); {
		case err == nil:
			c = old
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		c.Blocked = true
		if err := tx.PutContact(c); err != nil {
			return err
		}
		n, err = tx.DeleteRequestsFrom(id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("backend: block: %w", err)
	}
	b.setBlocked(id, true)
	b.log.Info("identity blocked", "identity", FormatKey(id), "requests_deleted", n)
	return n, nil
}

// Unblock lifts a block; the identity is no contact afterwards (add it
// again for that).
func (b *Backend) Unblock(ctx context.Context, id ed25519.PublicKey) error {
	err := b.update(ctx, func(tx *store.Tx) error {
		c, err := tx.Contact(id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !c.Blocked) {
			return fmt.Errorf("%w: %s is not blocked", ErrContactNotFound, FormatKey(id))
		}
		if err != nil {
			return err
		}
		return tx.DeleteContact(id)
	})
	if err != nil {
		return fmt.Errorf("backend: unblock: %w", err)
	}
	b.setBlocked(id, false)
	return nil
}
