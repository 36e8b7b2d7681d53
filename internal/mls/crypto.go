package mls

// The labeled cryptographic functions of RFC 9420 §5. Every label passed to
// these functions is given without the "MLS 1.0 " prefix, which they add;
// RefHash is the exception, because RFC 9420 defines it over the full label
// (for example "MLS 1.0 KeyPackage Reference").

import (
	"fmt"
	"math"
)

// labelPrefix is prepended to every label (RFC 9420 §5.1).
const labelPrefix = "MLS 1.0 "

func appendLabel(b []byte, label string) []byte {
	return AppendVector(b, func(b []byte) []byte {
		b = append(b, labelPrefix...)
		return append(b, label...)
	})
}

// ExpandWithLabel is RFC 9420 §5.1 ExpandWithLabel: HKDF-Expand of secret
// with the serialized KDFLabel {length, "MLS 1.0 "+label, context}.
func ExpandWithLabel(s Suite, secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > math.MaxUint16 {
		return nil, fmt.Errorf("mls: ExpandWithLabel length %d out of range", length)
	}
	info := AppendUint16(nil, uint16(length))
	info = appendLabel(info, label)
	info = AppendOpaque(info, context)
	out, err := s.Expand(secret, info, length)
	if err != nil {
		return nil, fmt.Errorf("mls: ExpandWithLabel %q: %w", label, err)
	}
	return out, nil
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func DeriveSecret(s Suite, secret []byte, label string) ([]byte, error) {
	return ExpandWithLabel(s, secret, label, nil, s.HashSize())
}

// DeriveTreeSecret is ExpandWithLabel(secret, label, generation, length) with
// the generation as a big-endian uint32 context (RFC 9420 §9).
func DeriveTreeSecret(s Suite, secret []byte, label string, generation uint32, length int) ([]byte, error) {
	return ExpandWithLabel(s, secret, label, AppendUint32(nil, generation), length)
}

// RefHash is RFC 9420 §5.2 RefHash: the suite hash of the serialized
// RefHashInput {label, value}. label is the full label, e.g.
// "MLS 1.0 KeyPackage Reference".
func RefHash(s Suite, label string, value []byte) []byte {
	in := AppendOpaque(nil, []byte(label))
	in = AppendOpaque(in, value)
	return s.Hash(in)
}

func signContent(label string, content []byte) []byte {
	b := appendLabel(nil, label)
	return AppendOpaque(b, content)
}

// SignWithLabel signs the serialized SignContent {"MLS 1.0 "+label, content}
// (RFC 9420 §5.1.2).
func SignWithLabel(s Suite, priv []byte, label string, content []byte) ([]byte, error) {
	sig, err := s.Sign(priv, signContent(label, content))
	if err != nil {
		return nil, fmt.Errorf("mls: SignWithLabel %q: %w", label, err)
	}
	return sig, nil
}

// VerifyWithLabel checks a SignWithLabel signature. A wrong signature
// matches ErrInvalidSignature.
func VerifyWithLabel(s Suite, pub []byte, label string, content, sig []byte) error {
	if err := s.Verify(pub, signContent(label, content), sig); err != nil {
		return fmt.Errorf("mls: VerifyWithLabel %q: %w", label, err)
	}
	return nil
}

// EncryptWithLabel is HPKE base-mode encryption with the serialized
// EncryptContext {"MLS 1.0 "+label, context} as info and empty aad
// (RFC 9420 §5.1.3).
func EncryptWithLabel(s Suite, pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	kemOutput, ciphertext, err = s.HPKESeal(pub, signContent(label, context), nil, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: EncryptWithLabel %q: %w", label, err)
	}
	return kemOutput, ciphertext, nil
}

// DecryptWithLabel reverses EncryptWithLabel. A failure to decrypt matches
// ErrDecrypt.
func DecryptWithLabel(s Suite, priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	pt, err := s.HPKEOpen(priv, kemOutput, signContent(label, context), nil, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("mls: DecryptWithLabel %q: %w", label, err)
	}
	return pt, nil
}
