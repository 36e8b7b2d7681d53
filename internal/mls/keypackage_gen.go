package mls

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file makes KeyPackages (RFC 9420 §10) together with the private
// material a client must keep to use them, and validates KeyPackages and
// LeafNodes received from others (§10.1, §7.3).

// ErrInvalidLeafNode is matched by every LeafNode validation failure.
var ErrInvalidLeafNode = errors.New("mls: invalid LeafNode")

// DefaultKeyPackageLifetime is the validity window given to new KeyPackages
// when KeyPackageParams.Lifetime is zero.
const DefaultKeyPackageLifetime = 90 * 24 * time.Hour

// Signer is a client's signing identity: a credential and the signature key
// pair bound to it. Its private key never leaves the client.
type Signer struct {
	Credential    Credential
	SignaturePub  []byte
	SignaturePriv []byte
	// CredentialTypes are further credential types the client accepts
	// from other members; its leaves list them in their capabilities
	// after basic and Credential's own type (RFC 9420 §7.2: a leaf may
	// join only a group whose members all support its credential type,
	// and must support every type in use).
	CredentialTypes []CredentialType
}

// NewSigner returns a Signer with a basic credential for identity and a fresh
// signature key pair of cipher suite cs.
func NewSigner(cs CipherSuite, identity []byte) (*Signer, error) {
	s, err := LookupSuite(cs)
	if err != nil {
		return nil, err
	}
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		return nil, fmt.Errorf("mls: generating signature key: %w", err)
	}
	return &Signer{Credential: NewBasicCredential(identity), SignaturePub: pub, SignaturePriv: priv}, nil
}

// KeyPackageParams tunes GenerateKeyPackage. The zero value is valid.
type KeyPackageParams struct {
	// Lifetime of the KeyPackage from now (DefaultKeyPackageLifetime if 0).
	Lifetime time.Duration
	// LastResort marks the KeyPackage with the last_resort extension: the
	// directory hands it out when no other package is left, and it may be
	// used more than once.
	LastResort bool
	// ExtensionTypes are non-default extension types the client supports,
	// for example a private-use group-context extension carrying metadata.
	ExtensionTypes []ExtensionType
	// LeafExtensions are placed in the leaf node; their types are added to
	// the capabilities automatically.
	LeafExtensions []Extension
	// Now overrides the clock (zero: time.Now).
	Now time.Time
}

// KeyPackagePrivate is the private half of a KeyPackage: the HPKE init key
// that Welcome messages are encrypted to, the leaf's HPKE encryption key and
// the signature key. The caller persists it (MarshalBinary) before the
// KeyPackage is published, and deletes it once used.
type KeyPackagePrivate struct {
	KeyPackage     KeyPackage
	InitPriv       []byte
	EncryptionPriv []byte
	SignaturePriv  []byte
}

// Ref returns the KeyPackageRef of the public KeyPackage.
func (p *KeyPackagePrivate) Ref() (KeyPackageRef, error) {
	s, err := LookupSuite(p.KeyPackage.CipherSuite)
	if err != nil {
		return nil, err
	}
	return p.KeyPackage.Ref(s), nil
}

// IsLastResort reports whether the KeyPackage carries the last_resort
// extension.
func (p *KeyPackagePrivate) IsLastResort() bool {
	_, ok := FindExtension(p.KeyPackage.Extensions, ExtensionLastResort)
	return ok
}

// Signer returns the signing identity of the KeyPackage.
func (p *KeyPackagePrivate) Signer() *Signer {
	return &Signer{
		Credential:    p.KeyPackage.LeafNode.Credential,
		SignaturePub:  bytes.Clone(p.KeyPackage.LeafNode.SignatureKey),
		SignaturePriv: bytes.Clone(p.SignaturePriv),
	}
}

const keyPackagePrivateVersion = 1

// MarshalBinary encodes p (public KeyPackage and private keys) for storage.
func (p *KeyPackagePrivate) MarshalBinary() ([]byte, error) {
	b := AppendUint8(nil, keyPackagePrivateVersion)
	b = p.KeyPackage.append(b)
	b = AppendOpaque(b, p.InitPriv)
	b = AppendOpaque(b, p.EncryptionPriv)
	b = AppendOpaque(b, p.SignaturePriv)
	return b, nil
}

// UnmarshalKeyPackagePrivate decodes the output of MarshalBinary.
func UnmarshalKeyPackagePrivate(b []byte) (*KeyPackagePrivate, error) {
	r := NewReader(b)
	if v := r.Uint8(); r.Err() == nil && v != keyPackagePrivateVersion {
		return nil, fmt.Errorf("%w: KeyPackagePrivate version %d", ErrDecode, v)
	}
	var p KeyPackagePrivate
	p.KeyPackage = r.readKeyPackage()
	p.InitPriv = r.Opaque()
	p.EncryptionPriv = r.Opaque()
	p.SignaturePriv = r.Opaque()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("mls: KeyPackagePrivate: %w", err)
	}
	return &p, nil
}

// defaultCapabilities returns the capabilities this package advertises for
// suite cs, with the given extra extension types.
func defaultCapabilities(cs CipherSuite, extTypes []ExtensionType, signer *Signer) Capabilities {
	exts := []ExtensionType{}
	for _, t := range extTypes {
		if !isDefaultExtension(t) && !slices.Contains(exts, t) {
			exts = append(exts, t)
		}
	}
	return Capabilities{
		Versions:     []ProtocolVersion{MLS10},
		CipherSuites: []CipherSuite{cs},
		Extensions:   exts,
		Proposals:    []ProposalType{},
		Credentials:  signer.credentialTypes(),
	}
}

// credentialTypes are the credential types the signer's leaves support:
// basic, its own, then the further ones it lists, without repeats.
func (s *Signer) credentialTypes() []CredentialType {
	return credentialTypeList(s.Credential.Type, s.CredentialTypes)
}

// credentialTypeList is basic, own, then further, without repeats.
func credentialTypeList(own CredentialType, further []CredentialType) []CredentialType {
	out := []CredentialType{CredentialBasic}
	for _, t := range append([]CredentialType{own}, further...) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// isDefaultExtension reports whether t is one of the extension types of RFC
// 9420 itself, which every client supports without listing them.
func isDefaultExtension(t ExtensionType) bool {
	return t >= ExtensionApplicationID && t <= ExtensionExternalSenders
}

// isDefaultProposal reports whether t is a proposal type of RFC 9420.
func isDefaultProposal(t ProposalType) bool {
	return t >= ProposalAdd && t <= ProposalGroupContextExtensions
}

// GenerateKeyPackage makes a KeyPackage for signer in cipher suite cs, with
// fresh init and encryption keys, and returns it with its private half.
func GenerateKeyPackage(cs CipherSuite, signer *Signer, opts *KeyPackageParams) (*KeyPackage, *KeyPackagePrivate, error) {
	if opts == nil {
		opts = &KeyPackageParams{}
	}
	s, err := LookupSuite(cs)
	if err != nil {
		return nil, nil, err
	}
	initPriv, initPub, err := s.GenerateKeyPair()
	if err != nil {
		return nil, nil, err
	}
	encPriv, encPub, err := s.GenerateKeyPair()
	if err != nil {
		return nil, nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	life := opts.Lifetime
	if life <= 0 {
		life = DefaultKeyPackageLifetime
	}
	extTypes := slices.Clone(opts.ExtensionTypes)
	for _, e := range opts.LeafExtensions {
		extTypes = append(extTypes, e.Type)
	}
	if opts.LastResort {
		extTypes = append(extTypes, ExtensionLastResort)
	}
	notBefore := now.Add(-time.Hour) // tolerate clock skew
	ln := LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  bytes.Clone(signer.SignaturePub),
		Credential:    signer.Credential,
		Capabilities:  defaultCapabilities(cs, extTypes, signer),
		Source:        LeafNodeSourceKeyPackage,
		Lifetime:      &Lifetime{NotBefore: uint64(notBefore.Unix()), NotAfter: uint64(now.Add(life).Unix())},
		Extensions:    cloneExtensions(opts.LeafExtensions),
	}
	if err := ln.Sign(s, signer.SignaturePriv, nil, 0); err != nil {
		return nil, nil, err
	}
	kp := &KeyPackage{
		Version:     MLS10,
		CipherSuite: cs,
		InitKey:     initPub,
		LeafNode:    ln,
		Extensions:  []Extension{},
	}
	if opts.LastResort {
		kp.Extensions = append(kp.Extensions, Extension{Type: ExtensionLastResort, Data: []byte{}})
	}
	if err := kp.Sign(s, signer.SignaturePriv); err != nil {
		return nil, nil, err
	}
	priv := &KeyPackagePrivate{
		KeyPackage:     *kp,
		InitPriv:       initPriv,
		EncryptionPriv: encPriv,
		SignaturePriv:  bytes.Clone(signer.SignaturePriv),
	}
	pub, err := ParseKeyPackage(kp.Marshal())
	if err != nil {
		return nil, nil, err
	}
	return pub, priv, nil
}

func cloneExtensions(exts []Extension) []Extension {
	out := make([]Extension, len(exts))
	for i, e := range exts {
		out[i] = Extension{Type: e.Type, Data: bytes.Clone(e.Data)}
		if out[i].Data == nil {
			out[i].Data = []byte{}
		}
	}
	return out
}

// ValidateKeyPackage checks a KeyPackage received from the directory or in
// an Add proposal for a group of cipher suite cs, as RFC 9420 §10.1 lists:
// the KeyPackage's version is MLS 1.0 and its cipher suite is cs; its leaf
// node is valid for a KeyPackage (§7.3: source key_package, signature,
// lifetime at now, its non-default extensions and its credential type listed
// in its capabilities); the KeyPackage signature verifies; and the init key
// differs from the leaf's encryption key. A zero now skips the lifetime
// check. Failures match ErrInvalidKeyPackage.
//
// The capabilities need not list the KeyPackage's own version or cipher
// suite: RFC 9420 does not require it, and unknown capability values are
// ignored (§13.4). Unknown KeyPackage and leaf extensions are accepted.
// Checks that need the group (required_capabilities, credential types in
// use, unique keys) are made when an Add is validated against a group.
func ValidateKeyPackage(kp *KeyPackage, cs CipherSuite, now time.Time) error {
	s, err := LookupSuite(cs)
	if err != nil {
		return err
	}
	return validateKeyPackage(s, kp, now)
}

func validateKeyPackage(s Suite, kp *KeyPackage, now time.Time) error {
	if kp.Version != MLS10 {
		return fmt.Errorf("%w: version %d", ErrInvalidKeyPackage, kp.Version)
	}
	if kp.CipherSuite != s.ID() {
		return fmt.Errorf("%w: cipher suite %v, group uses %v", ErrInvalidKeyPackage, kp.CipherSuite, s.ID())
	}
	if err := validateLeafNodeStandalone(s, &kp.LeafNode, LeafNodeSourceKeyPackage, nil, 0, now); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if err := kp.VerifySignature(s); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if subtle.ConstantTimeCompare(kp.InitKey, kp.LeafNode.EncryptionKey) == 1 {
		return fmt.Errorf("%w: init key equals the leaf encryption key", ErrInvalidKeyPackage)
	}
	if err := s.CheckHPKEPublicKey(kp.InitKey); err != nil {
		return fmt.Errorf("%w: init key: %w", ErrInvalidKeyPackage, err)
	}
	for _, e := range kp.Extensions {
		if !isDefaultExtension(e.Type) && !slices.Contains(kp.LeafNode.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: extension %d not in its capabilities", ErrInvalidKeyPackage, e.Type)
		}
	}
	return nil
}

// validateLeafNodeStandalone checks the parts of RFC 9420 §7.3 that depend
// only on the leaf itself: source, signature, lifetime (if now is not zero),
// that its non-default extensions are listed in its capabilities and that
// its capabilities list its credential type (§7.2). A basic credential must
// name an identity. The leaf's capabilities need not list the group's
// version or cipher suite: §7.3 does not ask for it.
func validateLeafNodeStandalone(s Suite, ln *LeafNode, source LeafNodeSource, groupID []byte, leaf LeafIndex, now time.Time) error {
	if ln.Source != source {
		return fmt.Errorf("%w: source %v, want %v", ErrInvalidLeafNode, ln.Source, source)
	}
	if ln.Credential.Type == CredentialBasic && len(ln.Credential.Identity) == 0 {
		return fmt.Errorf("%w: empty basic credential", ErrInvalidLeafNode)
	}
	if err := ln.VerifySignature(s, groupID, leaf); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
	}
	if err := s.CheckHPKEPublicKey(ln.EncryptionKey); err != nil {
		return fmt.Errorf("%w: encryption key: %w", ErrInvalidLeafNode, err)
	}
	if source == LeafNodeSourceKeyPackage && !now.IsZero() {
		if ln.Lifetime == nil {
			return fmt.Errorf("%w: no lifetime", ErrInvalidLeafNode)
		}
		t := uint64(now.Unix())
		if t < ln.Lifetime.NotBefore || t > ln.Lifetime.NotAfter {
			return fmt.Errorf("%w: outside its lifetime", ErrInvalidLeafNode)
		}
	}
	for _, e := range ln.Extensions {
		if !isDefaultExtension(e.Type) && !slices.Contains(ln.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: extension %d not in its capabilities", ErrInvalidLeafNode, e.Type)
		}
	}
	if !slices.Contains(ln.Capabilities.Credentials, ln.Credential.Type) {
		return fmt.Errorf("%w: credential type %v not in its capabilities", ErrInvalidLeafNode, ln.Credential.Type)
	}
	return nil
}
