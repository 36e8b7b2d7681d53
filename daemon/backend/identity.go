package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
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

// SameKeyRule is the single-device rule alone: a BasicCredential whose
// identity is the leaf's signature key, which is the user's identity key.
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

// DeviceRule is the multi-device rule (internal/devid): a leaf speaks for
// user U iff its credential is either the single-device basic credential
// (identity = signature key = U) or an x509 chain [device certificate
// issued by U for the leaf's signature key, U's self-signed certificate].
type DeviceRule struct{ devid.Rule }

// User implements IdentityRule; every refusal wraps ErrIdentityMismatch
// and the devid error that says why.
func (r DeviceRule) User(cred mls.Credential, sigKey []byte) ([]byte, error) {
	u, err := r.Rule.User(&cred, sigKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentityMismatch, err)
	}
	return u, nil
}

// identityRule is the rule qpd applies: one value, so that a rule
// replaces it here and nowhere else.
var identityRule IdentityRule = DeviceRule{}

// userOf is the person a member's leaf speaks for under the identity rule
// (nil for a leaf that does not pass it, which no group of qpd holds:
// every leaf passed it on the way in). Person-level logic (display,
// contacts, consent, safety numbers, direct chats) uses it; addressing
// (queues, recipients, Welcome delivery, Removes) uses m.SignatureKey,
// the device.
func userOf(m mls.Member) ed25519.PublicKey {
	u, err := identityRule.User(m.Credential, m.SignatureKey)
	if err != nil {
		return nil
	}
	return u
}

// signerOf is the MLS signer of this device: for a single-device identity
// the basic credential of its key, which also advertises x509 so that a
// person's linked devices can join its groups; for a linked (or restored)
// device the x509 credential of its chain. The caller clears
// SignaturePriv.
func signerOf(id store.Identity) (*mls.Signer, error) {
	if id.SingleDevice() {
		pub := id.PublicKey()
		s := &mls.Signer{Credential: mls.NewBasicCredential(pub), SignaturePub: pub, SignaturePriv: id.PrivateKey.Seed(),
			CredentialTypes: []mls.CredentialType{mls.CredentialX509}}
		if basicOnlySigner.Load() { // refresh.go
			s.CredentialTypes = nil
		}
		return s, nil
	}
	s, err := devid.Signer(id.Chain, id.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("backend: device signer: %w", err)
	}
	return s, nil
}

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
		return fmt.Errorf("%w: external commit by %x is not a resync of its own leaf", ErrMembershipRefused, truncateBytes(c.Committer.SignatureKey))
	}
	who, err := p.rule.User(c.Committer.Credential, c.Committer.SignatureKey)
	if err != nil {
		return err
	}
	for _, m := range c.Removed {
		was, err := p.rule.User(m.Credential, m.SignatureKey)
		if err == nil && bytes.Equal(was, who) && bytes.Equal(m.SignatureKey, c.Committer.SignatureKey) {
			return nil
		}
	}
	return fmt.Errorf("%w: resync by %x does not replace a leaf with its user and key", ErrMembershipRefused, truncateBytes(c.Committer.SignatureKey))
}

// isRefusal reports whether a rejection is the trust policy's.
func isRefusal(err error) bool {
	return errors.Is(err, ErrIdentityMismatch) || errors.Is(err, ErrMembershipRefused) ||
		errors.Is(err, mls.ErrCredentialRefused) || errors.Is(err, mls.ErrProposalRefused) || errors.Is(err, mls.ErrCommitRefused) ||
		errors.Is(err, ErrRecoveryRefused)
}

// ErrNotPrimaryDevice: the operation needs the user identity key, which
// this device does not hold (a linked device; only the first device or
// one restored from the identity backup does).
var ErrNotPrimaryDevice = errors.New("this device does not hold the identity key: only the first device, or one restored from the identity backup, can do this")

// linkedIdentity checks and assembles the identity of a device other than
// the user key: device key d, the chain U issued for it (devid.Verify
// with d's public key, now) for user, and userKey, U's private key when
// this device holds it (a restore) or nil (a linked device).
func linkedIdentity(user ed25519.PublicKey, d ed25519.PrivateKey, chain [][]byte, userKey ed25519.PrivateKey, now time.Time) (store.Identity, error) {
	if len(d) != ed25519.PrivateKeySize || len(user) != ed25519.PublicKeySize {
		return store.Identity{}, fmt.Errorf("%w: device or user key of the wrong size", ErrInvalidArgument)
	}
	dev := d.Public().(ed25519.PublicKey)
	if dev.Equal(user) {
		return store.Identity{}, fmt.Errorf("%w: a linked device's key is the user key", ErrInvalidArgument)
	}
	got, err := devid.Verify(chain, dev, now)
	if err != nil {
		return store.Identity{}, fmt.Errorf("%w: device chain: %w", ErrInvalidArgument, err)
	}
	if !got.User.Equal(user) {
		return store.Identity{}, fmt.Errorf("%w: device chain is for user %s, not %s", ErrInvalidArgument, FormatKey(got.User), FormatKey(user))
	}
	if userKey != nil && (len(userKey) != ed25519.PrivateKeySize || !userKey.Public().(ed25519.PublicKey).Equal(user)) {
		return store.Identity{}, fmt.Errorf("%w: user private key is not the user key's", ErrInvalidArgument)
	}
	id := store.Identity{PrivateKey: append(ed25519.PrivateKey{}, d...), User: append(ed25519.PublicKey{}, user...), Chain: make([][]byte, len(chain))}
	for i, c := range chain {
		id.Chain[i] = append([]byte{}, c...)
	}
	if userKey != nil {
		id.UserKey = append(ed25519.PrivateKey{}, userKey...)
	}
	return id, nil
}

// SetLinkedIdentity makes this empty state a device of user: its device
// key d (not the user key), the chain U issued for it, and userKey (U's
// private key for a device restored from the identity backup, nil for a
// linked device). The chain must verify for d and user. A state that has
// an identity already gets ErrIdentityExists.
func (b *Backend) SetLinkedIdentity(ctx context.Context, user ed25519.PublicKey, d ed25519.PrivateKey, chain [][]byte, userKey ed25519.PrivateKey) error {
	id, err := linkedIdentity(user, d, chain, userKey, time.Now())
	if err != nil {
		return err
	}
	defer id.Wipe()
	err = b.update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Identity(); err == nil {
			return ErrIdentityExists
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutIdentity(id)
	})
	if err != nil {
		return opError("set linked identity", err)
	}
	b.log.Info("identity stored as a device", "user", FormatKey(user), "device", FormatKey(id.PublicKey()), "primary", userKey != nil)
	b.setState(StateDisconnected, "", false)
	b.markRegistered()
	return nil
}

// UserIdentity returns the user identity (U's private key and a
// self-signed certificate) when this device holds it, else
// ErrNotPrimaryDevice. The caller wipes it.
func (b *Backend) UserIdentity(ctx context.Context) (*devid.User, error) {
	id, err := b.identity(ctx)
	if err != nil {
		return nil, err
	}
	defer id.Wipe()
	if !id.Primary() {
		return nil, ErrNotPrimaryDevice
	}
	u, err := devid.NewUser(id.UserKey, time.Now(), 0)
	if err != nil {
		return nil, fmt.Errorf("backend: user certificate: %w", err)
	}
	return u, nil
}

// IssueDevice certifies device key d (with a label, name) as a device of
// this person: the chain of its x509 credential, for the new device's
// SetLinkedIdentity. Only a primary device can (ErrNotPrimaryDevice).
func (b *Backend) IssueDevice(ctx context.Context, d ed25519.PublicKey, name string) ([][]byte, error) {
	u, err := b.UserIdentity(ctx)
	if err != nil {
		return nil, err
	}
	defer u.Wipe()
	chain, err := u.IssueDevice(d, name, time.Now(), 0)
	if err != nil {
		return nil, fmt.Errorf("%w: issue device certificate: %w", ErrInvalidArgument, err)
	}
	return chain, nil
}

// OwnKeys returns this person's user key U and this device's key D (equal
// for a single-device identity).
func (b *Backend) OwnKeys(ctx context.Context) (user, device ed25519.PublicKey, err error) {
	id, err := b.identity(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer id.Wipe()
	return append(ed25519.PublicKey{}, id.UserPublicKey()...), id.PublicKey(), nil
}
