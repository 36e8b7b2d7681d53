package mls

import "fmt"

// This file is the KeyPackage of RFC 9420 §10: a signed, pre-published
// bundle that lets others add a client to a group while it is offline.

// Creating and fully validating KeyPackages (lifetime, capabilities) is in
// keypackage_gen.go: GenerateKeyPackage and ValidateKeyPackage.

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
