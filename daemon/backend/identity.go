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
// (an external commit that is not a resync by the same identity and key).
var ErrMembershipRefused = errors.New("membership change refused")

// identityRule is the rule qpd applies: one value, so that a
// multi-device rule replaces it here and nowhere else.
var identityRule IdentityRule = SameKeyRule{}

// groupPolicy is the MLS policy of every group qpd keeps (internal/mls
// calls it for every leaf that enters or changes, every received proposal
// and every received commit before it merges); it goes with groupConfig.
var groupPolicy = mls.Policy{
	Identity:  trustPolicy{rule: identityRule},
	Proposals: mls.DefaultProposalFilter, // members only: no new-member or external proposals
	Commits:   trustPolicy{rule: identityRule},
}

// trustPolicy puts the identity rule and the membership rules into the
// MLS library's hooks.
type trustPolicy struct{ rule IdentityRule }

// ValidateLeaf implements mls.IdentityProvider: every leaf that enters or
// changes (Adds, Updates, UpdatePath leaves, external commits, the tree of
// a Welcome) passes the identity rule.
func (p trustPolicy) ValidateLeaf(leaf *mls.LeafInfo) error {
	_, err := p.rule.User(leaf.Credential, leaf.SignatureKey)
	return err
}

// ValidSuccessor implements mls.IdentityProvider: a leaf may be replaced
// (Update, UpdatePath, resync) only by a leaf of the same user.
func (p trustPolicy) ValidSuccessor(prev mls.Member, next *mls.LeafInfo) error {
	was, err := p.rule.User(prev.Credential, prev.SignatureKey)
	if err != nil {
		return err
	}
	now, err := p.rule.User(next.Credential, next.SignatureKey)
	if err != nil {
		return err
	}
	if !bytes.Equal(was, now) {
		return fmt.Errorf("%w: leaf %d of %x replaced by one of %x", ErrIdentityMismatch, prev.Leaf, was, now)
	}
	return nil
}

// InspectCommit implements mls.CommitInspector: an external commit is
// taken only as a resync by the same identity and signature key (a member
// that fell behind and rejoins, rejoin.go); nobody else joins that way.
func (p trustPolicy) InspectCommit(c *mls.StagedCommit) error {
	if c.SenderType == mls.SenderMember {
		return nil
	}
	if c.SenderType != mls.SenderNewMemberCommit || !c.Resync {
		return fmt.Errorf("%w: external commit by %x is not a resync of its own leaf", ErrMembershipRefused, truncateBytes(c.Committer.Identity))
	}
	for _, m := range c.Removed {
		if bytes.Equal(m.Identity, c.Committer.Identity) && bytes.Equal(m.SignatureKey, c.Committer.SignatureKey) {
			return nil
		}
	}
	return fmt.Errorf("%w: resync by %x does not replace a leaf with its identity and key", ErrMembershipRefused, truncateBytes(c.Committer.Identity))
}

// isRefusal reports whether a rejection is the trust policy's.
func isRefusal(err error) bool {
	return errors.Is(err, ErrIdentityMismatch) || errors.Is(err, ErrMembershipRefused) ||
		errors.Is(err, mls.ErrCredentialRefused) || errors.Is(err, mls.ErrProposalRefused) || errors.Is(err, mls.ErrCommitRefused) ||
		errors.Is(err, ErrRecoveryRefused)
}
