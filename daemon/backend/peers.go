package backend

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// This file is the one resolver of people: every call that takes a peer
// (invite, remove, block, verify, safety numbers, direct chats) reads it
// here, as a key or as a contact.
//
// A reference is read by these rules, in order:
//
//  1. 64 hex characters: that identity key, contact or not.
//  2. At least MinKeyPrefix hex characters (any case): the one contact
//     whose key starts with them; several is ErrAmbiguousPeer.
//  3. Anything else: the contact with exactly that name.
//
// Rules 2 and 3 never compete, because a contact name may not be made of
// MinKeyPrefix or more hex characters (validContactName): "dad" or "bea"
// are names, "deadbeef" can only be a key prefix. A name also holds only
// printable characters (no control, format or bidi characters, no
// surrounding space), so it cannot disguise itself on a terminal.

// MinKeyPrefix is the shortest hex prefix of a key that names a contact.
const MinKeyPrefix = 8

// ErrAmbiguousPeer: a key prefix matches several contacts.
var ErrAmbiguousPeer = errors.New("ambiguous peer")

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// looksLikeKey reports whether a reference is read as a key or key prefix.
func looksLikeKey(s string) bool { return len(s) >= MinKeyPrefix && isHex(s) }

func validContactName(name string) bool {
	if name == "" || len(name) > MaxContactName || !utf8.ValidString(name) || strings.TrimSpace(name) != name {
		return false
	}
	for _, r := range name {
		if r != ' ' && !unicode.IsPrint(r) {
			return false
		}
	}
	return !looksLikeKey(name)
}

// resolvePeer reads a reference to a person by the rules above; c is the
// contact entry when there is one (found reports it).
func resolvePeer(tx *store.Tx, ref string) (key ed25519.PublicKey, c store.Contact, found bool, err error) {
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "":
		return nil, c, false, fmt.Errorf("%w: empty peer: want an identity key or a contact name", ErrInvalidArgument)
	case len(ref) == 2*ed25519.PublicKeySize && isHex(ref):
		key, _ = hex.DecodeString(ref)
		c, err = tx.Contact(key)
		if errors.Is(err, store.ErrNotFound) {
			return key, store.Contact{}, false, nil
		}
		return key, c, err == nil, err
	case looksLikeKey(ref):
		if len(ref) > 2*ed25519.PublicKeySize {
			return nil, c, false, fmt.Errorf("%w: identity key %q: want %d hex characters", ErrInvalidArgument, truncate(ref, 80), 2*ed25519.PublicKeySize)
		}
		cs, err := tx.Contacts()
		if err != nil {
			return nil, c, false, err
		}
		prefix, n := strings.ToLower(ref), 0
		for _, e := range cs {
			if strings.HasPrefix(hex.EncodeToString(e.Identity), prefix) {
				c, n = e, n+1
			}
		}
		switch n {
		case 0:
			return nil, store.Contact{}, false, fmt.Errorf("%w: no contact's key starts with %s (give the whole key for someone who is no contact)", ErrContactNotFound, prefix)
		case 1:
			return c.Identity, c, true, nil
		}
		return nil, store.Contact{}, false, fmt.Errorf("%w: %d contacts' keys start with %s; give more of the key", ErrAmbiguousPeer, n, prefix)
	}
	if !validContactName(ref) {
		return nil, store.Contact{}, false, fmt.Errorf("%w: %q is no identity key, key prefix or contact name", ErrInvalidArgument, truncate(ref, 80))
	}
	c, err = tx.ContactByName(ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Contact{}, false, fmt.Errorf("%w: no contact is named %q", ErrContactNotFound, truncate(ref, 80))
	}
	if err != nil {
		return nil, store.Contact{}, false, err
	}
	return c.Identity, c, true, nil
}

// resolveContact finds a contact (or blocked identity) by reference.
func resolveContact(tx *store.Tx, ref string) (store.Contact, error) {
	key, c, found, err := resolvePeer(tx, ref)
	if err != nil {
		return store.Contact{}, err
	}
	if !found {
		return store.Contact{}, fmt.Errorf("%w: %s", ErrContactNotFound, FormatKey(key))
	}
	return c, nil
}

// ResolvePeer reads a reference to a person (a key, a key prefix of a
// contact, or a contact name; see the rules above) to an identity key.
func (b *Backend) ResolvePeer(ctx context.Context, ref string) (ed25519.PublicKey, error) {
	ks, err := b.ResolvePeers(ctx, []string{ref})
	if err != nil {
		return nil, err
	}
	return ks[0], nil
}

// ResolvePeers is ResolvePeer for several references, read together.
func (b *Backend) ResolvePeers(ctx context.Context, refs []string) ([]ed25519.PublicKey, error) {
	out := make([]ed25519.PublicKey, 0, len(refs))
	err := b.view(ctx, func(tx *store.Tx) error {
		for _, ref := range refs {
			k, _, _, err := resolvePeer(tx, ref)
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backend: peer: %w", err)
	}
	return out, nil
}

// RenameContact gives the contact named by ref a new name.
func (b *Backend) RenameContact(ctx context.Context, ref, name string) (Contact, error) {
	if !validContactName(name) {
		return Contact{}, fmt.Errorf("%w: contact name %q: %s", ErrInvalidArgument, truncate(name, 80), contactNameRule)
	}
	var c Contact
	err := b.update(ctx, func(tx *store.Tx) (err error) {
		if c, err = resolveContact(tx, ref); err != nil {
			return err
		}
		c.Name = name
		return tx.PutContact(c)
	})
	if err != nil {
		return Contact{}, fmt.Errorf("backend: rename contact: %w", err)
	}
	return c, nil
}

// contactNameRule says what validContactName accepts.
var contactNameRule = fmt.Sprintf("at most %d bytes of printable text, no surrounding spaces, not %d or more hex digits (that reads as a key)", MaxContactName, MinKeyPrefix)
