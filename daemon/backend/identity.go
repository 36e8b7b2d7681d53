package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// This file holds the one rule that binds a leaf to a user. Every leaf qpd
// accepts passes it: fetched KeyPackages, Adds in received commits, the
// tree of a Welcome, UpdatePath leaves and external commits. A message is
// shown under its sender's credential, so a leaf whose credential names
// someone else than the holder of its signature key would let a member
// (or a node handing out KeyPackages) speak as anybody.

// ErrIdentityMismatch: a leaf's credential does not belong to its
// signature key under the identity rule.
var ErrIdentityMismatch = errors.New("credential does not match the leaf's signature key")

// IdentityRule decides whether a credential and a leaf signature key are
// one user's, and which user. A multi-device credential (the device key
// certified by the user's identity key) is a new IdentityRule value, not a
// new code path: callers only see the user it returns.
type IdentityRule interface {
	// User returns the user identity (the Ed25519 identity key) that
	// cred with signature key sigKey speaks for, or an error wrapping
	// ErrIdentityMismatch.
	User(cred mls.Credential, sigKey []byte) ([]byte, error)
}

// SameKeyRule is today's rule: a BasicCredential whose identity is the
// leaf's signature key, which is the user's identity key.
type SameKeyRule struct{}

// User implements IdentityRule.
func (SameKeyRule) User(cred mls.Credential, sigKey []byte) ([]byte, error) {
	if cred.Type != mls.CredentialBasic {
		return nil, fmt.Errorf("%w: credential type %d, want basic", ErrIdentityMismatch, cred.Type)
	}
	if len(cred.Identity) != 32 || subtle.ConstantTimeCompare(cred.Identity, sigKey) != 1 {
		return nil, fmt.Errorf("%w: credential names %x, signature key is %x", ErrIdentityMismatch, truncateBytes(cred.Identity), truncateBytes(sigKey))
	}
	return cred.Identity, nil
}

// checkLeaf applies the rule to a leaf node.
func checkLeaf(rule IdentityRule, leaf *mls.LeafNode) ([]byte, error) {
	return rule.User(leaf.Credential, leaf.SignatureKey)
}

func truncateBytes(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// refuseKeyPackage is the error for a peer's KeyPackage that failed
// inspection; one that is not the peer's (another signature key under the
// peer's name: a substituting node) is also recorded as a refusal event.
func (b *Backend) refuseKeyPackage(ctx context.Context, groupID []byte, peer ed25519.PublicKey, info KeyPackageInfo) error {
	err := fmt.Errorf("%w: KeyPackage of %s: %w", ErrInvalidArgument, FormatKey(peer), info.Err)
	if errors.Is(info.Err, ErrIdentityMismatch) {
		b.log.Warn("KeyPackage refused: not the peer's", "peer", FormatKey(peer), "err", info.Err)
		b.refused(ctx, store.Event{GroupID: groupID, Member: peer, Detail: err.Error()})
	}
	return err
}

// refused records a refusal of the trust policy as an event (best effort:
// the refusal itself stands whether or not the event is stored).
func (b *Backend) refused(ctx context.Context, e store.Event) {
	e.Kind = store.EventRefused
	if err := b.update(ctx, func(tx *store.Tx) error { _, err := tx.AppendEvent(e); return err }); err != nil {
		b.log.Error("record refusal", "err", err)
	}
}
