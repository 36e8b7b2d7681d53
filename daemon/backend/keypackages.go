package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// DefaultCipherSuite is the MLS cipher suite of qpd's groups unless
// Config.GroupSuite or the caller says otherwise.
const DefaultCipherSuite = mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

// PostQuantumSuite is the suite of qpd's post-quantum groups: suite 1 with
// the X-Wing KEM (ML-KEM-768 + X25519) of draft-ietf-mls-pq-ciphersuites.
// Its signatures stay Ed25519, since the identity key is the leaf's
// signature key; the ML-DSA suites wait for a credential that binds
// another key to the identity.
const PostQuantumSuite = mls.MLS_128_XWING

// DefaultKeyPackageSuites are the suites qpd publishes KeyPackages in, so
// that it can be invited to classical and post-quantum groups.
var DefaultKeyPackageSuites = []mls.CipherSuite{DefaultCipherSuite, PostQuantumSuite}

// MLSKeyPackages makes KeyPackages with internal/mls under the device's
// signer: a BasicCredential whose identity is the signature key for a
// single-device identity, the x509 chain of the device for a linked one;
// the secrets are mls.KeyPackagePrivate.MarshalBinary.
type MLSKeyPackages struct {
	// Suite is the cipher suite (DefaultCipherSuite when zero).
	Suite mls.CipherSuite
	// ExtensionTypes are extra extension types to advertise as supported
	// (ExtensionGroupName always is).
	ExtensionTypes []mls.ExtensionType
}

// NewKeyPackage implements KeyPackageMaker. A zero cs is m.Suite.
func (m MLSKeyPackages) NewKeyPackage(signer *mls.Signer, cs mls.CipherSuite, lastResort bool, now time.Time) (KeyPackageBundle, error) {
	if cs == 0 {
		cs = m.Suite
	}
	if cs == 0 {
		cs = DefaultCipherSuite
	}
	exts := []mls.ExtensionType{ExtensionGroupName}
	for _, e := range m.ExtensionTypes {
		if e != ExtensionGroupName {
			exts = append(exts, e)
		}
	}
	kp, priv, err := mls.GenerateKeyPackage(cs, signer, &mls.KeyPackageParams{LastResort: lastResort, ExtensionTypes: exts, Now: now})
	if err != nil {
		return KeyPackageBundle{}, fmt.Errorf("generate key package: %w", err)
	}
	ref, err := priv.Ref()
	if err != nil {
		return KeyPackageBundle{}, fmt.Errorf("key package ref: %w", err)
	}
	secrets, err := priv.MarshalBinary()
	clear(priv.InitPriv)
	clear(priv.EncryptionPriv)
	clear(priv.SignaturePriv)
	if err != nil {
		return KeyPackageBundle{}, fmt.Errorf("encode key package secrets: %w", err)
	}
	b := KeyPackageBundle{Ref: ref, KeyPackage: kp.Marshal(), Secrets: secrets}
	if lt := kp.LeafNode.Lifetime; lt != nil {
		b.NotAfter = time.Unix(int64(min(lt.NotAfter, 1<<62)), 0)
	}
	return b, nil
}

// KeyPackageInfo describes a KeyPackage fetched from the node.
type KeyPackageInfo struct {
	// KeyPackage is the encoded KeyPackage as the node returned it.
	KeyPackage []byte
	Ref        []byte
	Suite      mls.CipherSuite
	// Identity is the user the credential speaks for under the identity
	// rule (the BasicCredential identity when the rule refuses it).
	Identity   []byte
	LastResort bool
	NotBefore  time.Time
	NotAfter   time.Time
	// Valid is true when the KeyPackage passes RFC 9420 section 10.1
	// validation (signatures, lifetime, capabilities), its leaf passes the
	// identity rule (identity.go) and the user it speaks for is the peer
	// that was asked for; Problem says why not otherwise.
	Valid   bool
	Problem string
	// Err is the typed fault behind Problem (ErrIdentityMismatch for a
	// KeyPackage that is not the peer's), nil when Valid.
	Err error
}

// FetchKey fetches (and so consumes, unless it is the last-resort one) a
// peer's KeyPackage from the node and validates it.
func (b *Backend) FetchKey(ctx context.Context, peer ed25519.PublicKey) (KeyPackageInfo, error) {
	return b.fetchKey(ctx, peer, false)
}

// PeekKey is FetchKey that consumes nothing: the node returns the peer's
// last-resort KeyPackage (ErrNoKeyPackage when it has none), enough to
// check the peer's credential and lifetime without using up a package
// an invitation would need.
func (b *Backend) PeekKey(ctx context.Context, peer ed25519.PublicKey) (KeyPackageInfo, error) {
	return b.fetchKey(ctx, peer, true)
}

func (b *Backend) fetchKey(ctx context.Context, peer ed25519.PublicKey, peek bool) (KeyPackageInfo, error) {
	if err := b.requireIdentity(ctx); err != nil {
		return KeyPackageInfo{}, err
	}
	c := b.client()
	if c == nil {
		ci := b.Connection()
		return KeyPackageInfo{}, fmt.Errorf("%w: %s (%s)", ErrNotConnected, ci.Address, ci.State)
	}
	fetch := c.FetchKeyPackage
	if peek {
		fetch = c.PeekKeyPackage
	}
	raw, err := fetch(ctx, peer)
	if errors.Is(err, nodeclient.ErrPeekUnsupported) {
		return KeyPackageInfo{}, fmt.Errorf("%w: the node does not support peeking (it answered as a fetch, consuming one of %s's KeyPackages)", ErrUnimplemented, FormatKey(peer))
	}
	if errors.Is(err, nodeclient.ErrNoKeyPackage) && peek {
		return KeyPackageInfo{}, fmt.Errorf("%w: the node has no last-resort KeyPackage of %s to peek at (has the peer registered?)", ErrNoKeyPackage, FormatKey(peer))
	}
	if errors.Is(err, nodeclient.ErrNoKeyPackage) {
		return KeyPackageInfo{}, fmt.Errorf("%w: the node has none for %s (has the peer registered?)", ErrNoKeyPackage, FormatKey(peer))
	}
	if err != nil {
		return KeyPackageInfo{}, fmt.Errorf("%w: fetch key package: %w", ErrNotConnected, err)
	}
	return inspectKeyPackage(identityRule, raw, peer, time.Now()), nil
}

// MaxKeyPackageLifetime is the longest total lifetime (not_after minus
// not_before) qpd accepts in a peer's KeyPackage. RFC 9420 §7.2 asks every
// application to set one, so that a leaked KeyPackage cannot stay usable
// for good; qpd's own last 90 days.
const MaxKeyPackageLifetime = 366 * 24 * time.Hour

// inspectKeyPackage decodes and validates a KeyPackage; any fault is
// reported in the result, never as a panic or error.
func inspectKeyPackage(rule IdentityRule, raw []byte, peer ed25519.PublicKey, now time.Time) KeyPackageInfo {
	info := KeyPackageInfo{KeyPackage: raw}
	fail := func(err error) KeyPackageInfo {
		info.Problem, info.Err = err.Error(), err
		return info
	}
	kp, err := mls.ParseKeyPackage(raw)
	if err != nil {
		return fail(err)
	}
	info.Suite = kp.CipherSuite
	info.Identity = kp.LeafNode.Credential.Identity
	if lt := kp.LeafNode.Lifetime; lt != nil {
		info.NotBefore = time.Unix(int64(min(lt.NotBefore, 1<<62)), 0)
		info.NotAfter = time.Unix(int64(min(lt.NotAfter, 1<<62)), 0)
	}
	_, info.LastResort = mls.FindExtension(kp.Extensions, mls.ExtensionLastResort)
	s, err := mls.LookupSuite(kp.CipherSuite)
	if err != nil {
		return fail(err)
	}
	info.Ref = kp.Ref(s)
	if err := mls.ValidateKeyPackage(kp, kp.CipherSuite, now); err != nil {
		return fail(err)
	}
	if lt := kp.LeafNode.Lifetime; lt == nil || lt.NotAfter-lt.NotBefore > uint64(MaxKeyPackageLifetime/time.Second) {
		return fail(fmt.Errorf("%w: lifetime %v .. %v is longer than %v", ErrInvalidArgument, info.NotBefore.UTC(), info.NotAfter.UTC(), MaxKeyPackageLifetime))
	}
	// The identity rule binds the leaf to a user; that user must be the
	// peer. A node that answers with its own KeyPackage naming the peer
	// fails here: its signature key is not the peer's identity key.
	user, err := rule.User(kp.LeafNode.Credential, kp.LeafNode.SignatureKey)
	if err != nil {
		return fail(err)
	}
	info.Identity = user // the person, also for a device's x509 credential
	if subtle.ConstantTimeCompare(user, peer) != 1 {
		return fail(fmt.Errorf("%w: KeyPackage speaks for %x, not the peer %x", ErrIdentityMismatch, user, []byte(peer)))
	}
	info.Valid = true
	return info
}
