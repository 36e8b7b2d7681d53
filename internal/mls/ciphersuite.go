package mls

// This file defines the cipher suite abstraction of RFC 9420 §5.1: one value
// per suite that bundles the hash, KDF, AEAD, HPKE and signature primitives.
// Everything above this file is written against the Suite interface, so a new
// suite (for example a post-quantum KEM) is a new value in the registry, not a
// new code path.

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
)

// Sentinel errors of the cryptographic layer.
var (
	// ErrUnsupportedSuite is returned for a cipher suite this package does not
	// implement.
	ErrUnsupportedSuite = errors.New("mls: unsupported cipher suite")
	// ErrInvalidSignature is returned when a signature does not verify.
	ErrInvalidSignature = errors.New("mls: invalid signature")
	// ErrDecrypt is returned when AEAD or HPKE decryption fails.
	ErrDecrypt = errors.New("mls: decryption failed")
	// ErrInvalidKey is returned for a key that cannot be parsed for the suite.
	ErrInvalidKey = errors.New("mls: invalid key")
)

// Suite is the set of primitives of one MLS cipher suite. Keys are byte
// strings in their RFC 9420 / RFC 9180 serialized forms: HPKE keys as
// SerializePublicKey/SerializePrivateKey, Ed25519 and Ed448 private keys as
// the seed, ECDSA private keys as the big-endian scalar and ECDSA public keys
// as uncompressed points. Signatures are Ed25519/Ed448 signatures or
// DER-encoded ECDSA signatures.
type Suite interface {
	// ID returns the cipher suite code point.
	ID() CipherSuite

	// Hash returns the suite hash of data.
	Hash(data []byte) []byte
	// HashSize returns Nh, the output size of the hash and the KDF.
	HashSize() int
	// Extract is HKDF-Extract with the suite hash.
	Extract(salt, ikm []byte) []byte
	// Expand is HKDF-Expand with the suite hash.
	Expand(prk, info []byte, length int) ([]byte, error)
	// MAC is HMAC with the suite hash.
	MAC(key, data []byte) []byte

	// AEADKeySize returns Nk of the suite AEAD.
	AEADKeySize() int
	// AEADNonceSize returns Nn of the suite AEAD.
	AEADNonceSize() int
	// Seal encrypts and authenticates plaintext with the suite AEAD.
	Seal(key, nonce, aad, plaintext []byte) ([]byte, error)
	// Open authenticates and decrypts ciphertext; failures match ErrDecrypt.
	Open(key, nonce, aad, ciphertext []byte) ([]byte, error)

	// DeriveKeyPair is the HPKE DeriveKeyPair of RFC 9180 §7.1.3.
	DeriveKeyPair(ikm []byte) (priv, pub []byte, err error)
	// GenerateKeyPair makes a fresh HPKE key pair: DeriveKeyPair of random
	// input keying material from crypto/rand (RFC 9180 §7.1.3).
	GenerateKeyPair() (priv, pub []byte, err error)
	// HPKESeal is single-shot HPKE base-mode encryption.
	HPKESeal(pub, info, aad, plaintext []byte) (kemOutput, ciphertext []byte, err error)
	// HPKEOpen is single-shot HPKE base-mode decryption; failures match
	// ErrDecrypt.
	HPKEOpen(priv, kemOutput, info, aad, ciphertext []byte) ([]byte, error)
	// HPKEExportSender sets up a base-mode HPKE context to pub and returns
	// its kem output with an exported secret (RFC 9180 §5.3), as external
	// commits need (RFC 9420 §8.3).
	HPKEExportSender(pub, info []byte, exporterContext string, length int) (kemOutput, secret []byte, err error)
	// HPKEExportReceiver is the receiving side of HPKEExportSender.
	HPKEExportReceiver(priv, kemOutput, info []byte, exporterContext string, length int) ([]byte, error)
	// CheckHPKEPublicKey checks that pub is a valid HPKE public key of the
	// suite's KEM (RFC 9420 §7.3, §10.1): it parses, and for X25519 and X448
	// it is not a low-order point such as all zeros. Failures match
	// ErrInvalidKey.
	CheckHPKEPublicKey(pub []byte) error

	// GenerateSignatureKey makes a fresh signature key pair.
	GenerateSignatureKey() (priv, pub []byte, err error)
	// Sign signs message with the suite signature scheme.
	Sign(priv, message []byte) ([]byte, error)
	// Verify checks a signature; a bad signature matches ErrInvalidSignature.
	Verify(pub, message, sig []byte) error
}

// suite is the one implementation of Suite. It is assembled from a hash, an
// AEAD, an HPKE KEM binding and a signature scheme.
type suite struct {
	id        CipherSuite
	newHash   func() hash.Hash
	nh        int // cached output size of newHash; 0 until registered
	keySize   int
	nonceSize int
	newAEAD   func(key []byte) (cipher.AEAD, error)
	kem       hpkeScheme
	sig       signatureScheme
}

// hpkeScheme is single-shot HPKE for one (KEM, KDF, AEAD) combination.
type hpkeScheme interface {
	deriveKeyPair(ikm []byte) (priv, pub []byte, err error)
	seal(pub, info, aad, plaintext []byte) (enc, ct []byte, err error)
	open(priv, enc, info, aad, ct []byte) ([]byte, error)
	exportSender(pub, info []byte, exporterContext string, length int) (enc, secret []byte, err error)
	exportReceiver(priv, enc, info []byte, exporterContext string, length int) ([]byte, error)
	checkPublicKey(pub []byte) error
}

// signatureScheme is one signature algorithm.
type signatureScheme interface {
	generate() (priv, pub []byte, err error)
	sign(priv, message []byte) ([]byte, error)
	verify(pub, message, sig []byte) error
}

var suites = map[CipherSuite]*suite{}

func registerSuite(s *suite) {
	s.nh = s.newHash().Size()
	suites[s.id] = s
}

// LookupSuite returns the implementation of a cipher suite, or an error
// matching ErrUnsupportedSuite.
func LookupSuite(id CipherSuite) (Suite, error) {
	s, ok := suites[id]
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedSuite, id)
	}
	return s, nil
}

// SupportedSuites lists the implemented cipher suites in ascending order.
func SupportedSuites() []CipherSuite {
	ids := slices.Sorted(maps.Keys(suites))
	return ids
}

func (s *suite) ID() CipherSuite { return s.id }

func (s *suite) Hash(data []byte) []byte {
	h := s.newHash()
	h.Write(data)
	return h.Sum(nil)
}

func (s *suite) HashSize() int {
	if s.nh != 0 {
		return s.nh
	}
	return s.newHash().Size()
}

func (s *suite) Extract(salt, ikm []byte) []byte {
	// HKDF-Extract (RFC 5869 §2.2) is HMAC keyed with the salt. HMAC pads the
	// key with zeros, so an empty salt equals the default of Nh zero bytes.
	return s.MAC(salt, ikm)
}

func (s *suite) Expand(prk, info []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*s.HashSize() {
		return nil, fmt.Errorf("mls: HKDF-Expand length %d out of range", length)
	}
	out, err := hkdf.Expand(s.newHash, prk, string(info), length)
	if err != nil {
		return nil, fmt.Errorf("mls: HKDF-Expand: %w", err)
	}
	return out, nil
}

func (s *suite) MAC(key, data []byte) []byte {
	m := hmac.New(s.newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

func (s *suite) AEADKeySize() int   { return s.keySize }
func (s *suite) AEADNonceSize() int { return s.nonceSize }

func (s *suite) aead(key, nonce []byte) (cipher.AEAD, error) {
	if len(key) != s.keySize {
		return nil, fmt.Errorf("%w: AEAD key is %d bytes, want %d", ErrInvalidKey, len(key), s.keySize)
	}
	if len(nonce) != s.nonceSize {
		return nil, fmt.Errorf("%w: AEAD nonce is %d bytes, want %d", ErrInvalidKey, len(nonce), s.nonceSize)
	}
	return s.newAEAD(key)
}

func (s *suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.aead(key, nonce)
	if err != nil {
		return nil, err
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

func (s *suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.aead(key, nonce)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

func (s *suite) DeriveKeyPair(ikm []byte) ([]byte, []byte, error) {
	return s.kem.deriveKeyPair(ikm)
}

// hpkeIKMSize is the length of the random input keying material of
// GenerateKeyPair: Nsk of P-521, the largest private key of the supported
// KEMs, so that the input has at least Nsk bytes of entropy for every suite
// (RFC 9180 §7.1.3).
const hpkeIKMSize = 66

func (s *suite) GenerateKeyPair() ([]byte, []byte, error) {
	ikm, err := randomBytes(hpkeIKMSize)
	if err != nil {
		return nil, nil, err
	}
	defer clear(ikm)
	return s.kem.deriveKeyPair(ikm)
}

func (s *suite) CheckHPKEPublicKey(pub []byte) error { return s.kem.checkPublicKey(pub) }

func (s *suite) HPKESeal(pub, info, aad, plaintext []byte) ([]byte, []byte, error) {
	return s.kem.seal(pub, info, aad, plaintext)
}

func (s *suite) HPKEOpen(priv, kemOutput, info, aad, ciphertext []byte) ([]byte, error) {
	return s.kem.open(priv, kemOutput, info, aad, ciphertext)
}

func (s *suite) HPKEExportSender(pub, info []byte, exporterContext string, length int) ([]byte, []byte, error) {
	return s.kem.exportSender(pub, info, exporterContext, length)
}

func (s *suite) HPKEExportReceiver(priv, kemOutput, info []byte, exporterContext string, length int) ([]byte, error) {
	return s.kem.exportReceiver(priv, kemOutput, info, exporterContext, length)
}

func (s *suite) GenerateSignatureKey() ([]byte, []byte, error) { return s.sig.generate() }

func (s *suite) Sign(priv, message []byte) ([]byte, error) { return s.sig.sign(priv, message) }

func (s *suite) Verify(pub, message, sig []byte) error { return s.sig.verify(pub, message, sig) }
