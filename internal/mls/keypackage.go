package mls

import (
	"bytes"
	"fmt"
)

// This file is the KeyPackage of RFC 9420 §10: a signed, pre-published
// bundle that lets others add a client to a group while it is offline.

// KeyPackage is a client's offer to be added to groups (RFC 9420 §10). The
// InitKey is the HPKE public key a Welcome is encrypted to; LeafNode is the
// leaf the client will occupy. Signature covers every other field
// (KeyPackageTBS) and is made with LeafNode.SignatureKey.
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     []byte
	LeafNode    LeafNode
	Extensions  []Extension
	Signature   []byte
}

// KeyPackageRef names a KeyPackage: RefHash("MLS 1.0 KeyPackage Reference",
// KeyPackage) (RFC 9420 §5.2).
type KeyPackageRef []byte

// appendTBS appends KeyPackageTBS: every field but the signature.
func (kp *KeyPackage) appendTBS(b []byte) []byte {
	b = AppendUint16(b, uint16(kp.Version))
	b = AppendUint16(b, uint16(kp.CipherSuite))
	b = AppendOpaque(b, kp.InitKey)
	b = kp.LeafNode.append(b)
	return AppendExtensions(b, kp.Extensions)
}

// append appends the TLS encoding of kp.
func (kp *KeyPackage) append(b []byte) []byte {
	b = kp.appendTBS(b)
	return AppendOpaque(b, kp.Signature)
}

// Marshal returns the TLS encoding of kp.
func (kp *KeyPackage) Marshal() []byte { return kp.append(nil) }

// readKeyPackage reads a KeyPackage. The version and cipher suite are read as
// given; Validate checks them.
func (r *Reader) readKeyPackage() KeyPackage {
	var kp KeyPackage
	kp.Version = ProtocolVersion(r.Uint16())
	kp.CipherSuite = CipherSuite(r.Uint16())
	kp.InitKey = r.Opaque()
	kp.LeafNode = r.readLeafNode()
	kp.Extensions = r.ReadExtensions()
	kp.Signature = r.Opaque()
	return kp
}

// ParseKeyPackage decodes one KeyPackage that fills b (the bare struct, not
// an MLSMessage; see ParseMLSMessage for the framed form).
func ParseKeyPackage(b []byte) (*KeyPackage, error) {
	r := NewReader(b)
	kp := r.readKeyPackage()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing KeyPackage: %w", err)
	}
	return &kp, nil
}

// Ref returns the KeyPackageRef of kp under suite s.
func (kp *KeyPackage) Ref(s Suite) KeyPackageRef {
	return KeyPackageRef(RefHash(s, "MLS 1.0 KeyPackage Reference", kp.Marshal()))
}

// Sign fills kp.Signature with SignWithLabel(priv, "KeyPackageTBS", ...).
// The leaf node must already be signed.
func (kp *KeyPackage) Sign(s Suite, priv []byte) error {
	sig, err := SignWithLabel(s, priv, "KeyPackageTBS", kp.appendTBS(nil))
	if err != nil {
		return fmt.Errorf("signing KeyPackage: %w", err)
	}
	kp.Signature = sig
	return nil
}

// VerifySignature checks kp.Signature against the leaf's signature key.
func (kp *KeyPackage) VerifySignature(s Suite) error {
	if err := VerifyWithLabel(s, kp.LeafNode.SignatureKey, "KeyPackageTBS", kp.appendTBS(nil), kp.Signature); err != nil {
		return fmt.Errorf("KeyPackage signature: %w", err)
	}
	return nil
}

// Validate makes the checks of RFC 9420 §10.1 that need no group: the version
// is MLS 1.0, the cipher suite is s, the leaf node comes from a KeyPackage
// and its lifetime covers now (seconds since the Unix epoch), the init key
// differs from the leaf's encryption key, and both signatures (the leaf's and
// the package's) verify. Capability checks against a group's requirements
// are the caller's. Errors wrap ErrInvalidKeyPackage, or ErrInvalidSignature
// for a bad signature.
func (kp *KeyPackage) Validate(s Suite, now uint64) error {
	switch {
	case kp.Version != MLS10:
		return fmt.Errorf("%w: version %d", ErrInvalidKeyPackage, kp.Version)
	case kp.CipherSuite != s.ID():
		return fmt.Errorf("%w: cipher suite %v, want %v", ErrInvalidKeyPackage, kp.CipherSuite, s.ID())
	case kp.LeafNode.Source != LeafNodeSourceKeyPackage:
		return fmt.Errorf("%w: leaf node source %v", ErrInvalidKeyPackage, kp.LeafNode.Source)
	case kp.LeafNode.Lifetime == nil:
		return fmt.Errorf("%w: leaf node has no lifetime", ErrInvalidKeyPackage)
	case now < kp.LeafNode.Lifetime.NotBefore || now > kp.LeafNode.Lifetime.NotAfter:
		return fmt.Errorf("%w: outside lifetime [%d, %d] at %d", ErrInvalidKeyPackage,
			kp.LeafNode.Lifetime.NotBefore, kp.LeafNode.Lifetime.NotAfter, now)
	case bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey):
		return fmt.Errorf("%w: init key equals the leaf encryption key", ErrInvalidKeyPackage)
	}
	if err := kp.LeafNode.VerifySignature(s, nil, 0); err != nil {
		return fmt.Errorf("KeyPackage leaf node: %w", err)
	}
	return kp.VerifySignature(s)
}

// KeyPackageOptions are the inputs of NewKeyPackage.
type KeyPackageOptions struct {
	Credential                  Credential
	SignaturePriv, SignaturePub []byte
	// Capabilities of the leaf. Empty lists of versions, cipher suites and
	// credential types are filled with MLS 1.0, the suite and the
	// credential's type.
	Capabilities Capabilities
	Lifetime     Lifetime
	// LeafExtensions go in the leaf node, Extensions in the KeyPackage.
	LeafExtensions, Extensions []Extension
}

// NewKeyPackage makes a signed KeyPackage with fresh init and leaf
// encryption key pairs (from crypto/rand) and returns it with their private
// keys. The caller keeps the private keys until the KeyPackage is used or
// expires.
func NewKeyPackage(s Suite, opt KeyPackageOptions) (kp *KeyPackage, initPriv, encryptionPriv []byte, err error) {
	initPriv, initPub, err := s.GenerateKeyPair()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("init key: %w", err)
	}
	encryptionPriv, encryptionPub, err := s.GenerateKeyPair()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encryption key: %w", err)
	}
	caps := opt.Capabilities
	if len(caps.Versions) == 0 {
		caps.Versions = []ProtocolVersion{MLS10}
	}
	if len(caps.CipherSuites) == 0 {
		caps.CipherSuites = []CipherSuite{s.ID()}
	}
	if len(caps.Credentials) == 0 {
		caps.Credentials = []CredentialType{opt.Credential.Type}
	}
	if caps.Extensions == nil {
		caps.Extensions = []ExtensionType{}
	}
	if caps.Proposals == nil {
		caps.Proposals = []ProposalType{}
	}
	lt := opt.Lifetime
	kp = &KeyPackage{
		Version:     MLS10,
		CipherSuite: s.ID(),
		InitKey:     initPub,
		LeafNode: LeafNode{
			EncryptionKey: encryptionPub,
			SignatureKey:  opt.SignaturePub,
			Credential:    opt.Credential,
			Capabilities:  caps,
			Source:        LeafNodeSourceKeyPackage,
			Lifetime:      &lt,
			Extensions:    nonNilExtensions(opt.LeafExtensions),
		},
		Extensions: nonNilExtensions(opt.Extensions),
	}
	if err := kp.LeafNode.Sign(s, opt.SignaturePriv, nil, 0); err != nil {
		return nil, nil, nil, err
	}
	if err := kp.Sign(s, opt.SignaturePriv); err != nil {
		return nil, nil, nil, err
	}
	return kp, initPriv, encryptionPriv, nil
}

// nonNilExtensions returns exts, or an empty list for nil, so that a value
// built here equals its decoded form.
func nonNilExtensions(exts []Extension) []Extension {
	if exts == nil {
		return []Extension{}
	}
	return exts
}
