package backend

import (
	"bytes"
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

// ErrMembershipRefused: a membership change the policy does not allow
// (a new member's own proposal, an external commit that is not a resync
// by the same identity and key, a leaf that changes whose user it is).
var ErrMembershipRefused = errors.New("membership change refused")

// memberKey is a member's user and signature key at a leaf.
type memberKey struct {
	user, sigKey []byte
}

// snapshotMembers records the users of a group's leaves before a message
// is processed.
func snapshotMembers(g *mls.Group) map[mls.LeafIndex]memberKey {
	out := map[mls.LeafIndex]memberKey{}
	for _, m := range g.Members() {
		out[m.Leaf] = memberKey{user: m.Identity, sigKey: m.SignatureKey}
	}
	return out
}

// checkReceived applies the policy to what a received handshake message
// did to g (now in its new state) compared with the leaves before:
//   - proposals only from members (no new-member or external proposals:
//     only members may add);
//   - an external commit only as a resync: the joiner is a member of the
//     old tree with the same identity and signature key, and its old leaf
//     is removed;
//   - every leaf of the new tree passes the identity rule, and a leaf
//     present before and after speaks for the same user (an UpdatePath or
//     Update may rotate keys under a rule that allows it, never change
//     whose leaf it is).
func (b *Backend) checkReceived(before map[mls.LeafIndex]memberKey, g *mls.Group, rec *mls.Received) error {
	switch rec.Kind {
	case mls.KindProposal:
		if rec.SenderType != mls.SenderMember {
			return fmt.Errorf("%w: a proposal from a non-member (sender type %v)", ErrMembershipRefused, rec.SenderType)
		}
		return nil
	case mls.KindCommit:
	default:
		return nil
	}
	if rec.SenderType != mls.SenderMember {
		if rec.SenderType != mls.SenderNewMemberCommit {
			return fmt.Errorf("%w: a commit from sender type %v", ErrMembershipRefused, rec.SenderType)
		}
		user, err := b.rule.User(rec.Sender.Credential, rec.Sender.SignatureKey)
		if err != nil {
			return fmt.Errorf("external commit: %w", err)
		}
		resync := false
		for _, m := range rec.Removed {
			if old, ok := before[m.Leaf]; ok && bytes.Equal(old.user, user) && bytes.Equal(old.sigKey, rec.Sender.SignatureKey) {
				resync = true
			}
		}
		if !resync {
			return fmt.Errorf("%w: external commit by %x is not a resync of its own leaf", ErrMembershipRefused, user)
		}
	}
	removed := map[mls.LeafIndex]bool{}
	for _, m := range rec.Removed {
		removed[m.Leaf] = true
	}
	for _, m := range g.Members() {
		user, err := b.rule.User(m.Credential, m.SignatureKey)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", m.Leaf, err)
		}
		if old, ok := before[m.Leaf]; ok && !removed[m.Leaf] && !bytes.Equal(old.user, user) {
			return fmt.Errorf("%w: leaf %d changed from %x to %x", ErrIdentityMismatch, m.Leaf, old.user, user)
		}
	}
	return nil
}

// checkTree applies the identity rule to every leaf of a group joined by
// Welcome.
func (b *Backend) checkTree(g *mls.Group) error {
	for _, m := range g.Members() {
		if _, err := b.rule.User(m.Credential, m.SignatureKey); err != nil {
			return fmt.Errorf("leaf %d of the joined tree: %w", m.Leaf, err)
		}
	}
	return nil
}

// isRefusal reports whether a rejection is the trust policy's.
func isRefusal(err error) bool {
	return errors.Is(err, ErrIdentityMismatch) || errors.Is(err, ErrMembershipRefused)
}
