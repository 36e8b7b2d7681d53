package mls

// The post-quantum cipher suites of draft-ietf-mls-pq-ciphersuites.
//
// The draft defines eleven suites: eight pair a post-quantum KEM (ML-KEM of
// FIPS 203, alone or in a hybrid with X25519, P-256 or P-384) with a classical
// signature, which protects the confidentiality of a recorded conversation
// against a future quantum computer ("harvest now, decrypt later") while
// authentication stays classical; three also sign with ML-DSA (FIPS 204).
// Every KEM comes from crypto/hpke (X-Wing is MLKEM768-X25519, HPKE KEM
// 0x647a); ML-DSA comes from circl. The KDF inside MLS stays HKDF, as the
// draft asks.
//
// The draft's code points are still "TBD". Until IANA assigns them the
// suites live at RFC 9420 §17.1 private-use values, TBDn at 0xF000+n, in the
// one table below: switching a suite to its IANA value is changing its line
// there. Peers must agree on these values out of band, which is why they are
// private use; two stacks that picked other values interoperate only after
// the switch.

import (
	"crypto"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
)

// The post-quantum suites and their code points (private use, RFC 9420
// §17.1, until the draft's TBD values are assigned).
const (
	MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519        CipherSuite = 0xF001 // TBD1
	MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519        CipherSuite = 0xF002 // TBD2
	MLS_128_MLKEM768P256_AES128GCM_SHA256_P256             CipherSuite = 0xF003 // TBD3
	MLS_128_MLKEM768P256_AES256GCM_SHA384_P256             CipherSuite = 0xF004 // TBD4
	MLS_192_MLKEM1024P384_AES256GCM_SHA384_P384            CipherSuite = 0xF005 // TBD5
	MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519              CipherSuite = 0xF006 // TBD6
	MLS_128_MLKEM768_AES256GCM_SHA384_P256                 CipherSuite = 0xF007 // TBD7
	MLS_192_MLKEM1024_AES256GCM_SHA384_P384                CipherSuite = 0xF008 // TBD8
	MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44 CipherSuite = 0xF009 // TBD9
	MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65              CipherSuite = 0xF00A // TBD10
	MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87             CipherSuite = 0xF00B // TBD11
)

// MLS_128_XWING is the suite applications pick for a post-quantum group:
// suite 1 with its KEM replaced by X-Wing, so the cost of going post-quantum
// is the KEM alone.
const MLS_128_XWING = MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519

func init() {
	p256 := ecdsaScheme{curve: elliptic.P256(), hash: crypto.SHA256}
	p384 := ecdsaScheme{curve: elliptic.P384(), hash: crypto.SHA384}
	for _, s := range []*suite{
		pqSuite(MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519, hpke.MLKEM768X25519(), false, ed25519Scheme{}),
		pqSuite(MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519, hpke.MLKEM768X25519(), true, ed25519Scheme{}),
		pqSuite(MLS_128_MLKEM768P256_AES128GCM_SHA256_P256, hpke.MLKEM768P256(), false, p256),
		pqSuite(MLS_128_MLKEM768P256_AES256GCM_SHA384_P256, hpke.MLKEM768P256(), true, p256),
		pqSuite(MLS_192_MLKEM1024P384_AES256GCM_SHA384_P384, hpke.MLKEM1024P384(), true, p384),
		pqSuite(MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519, hpke.MLKEM768(), true, ed25519Scheme{}),
		pqSuite(MLS_128_MLKEM768_AES256GCM_SHA384_P256, hpke.MLKEM768(), true, p256),
		pqSuite(MLS_192_MLKEM1024_AES256GCM_SHA384_P384, hpke.MLKEM1024(), true, p384),
		{
			id:      MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44,
			newHash: sha512.New384, keySize: 32, nonceSize: 12, newAEAD: newChaCha20Poly1305,
			kem: &stdHPKE{kem: hpke.MLKEM768X25519(), kdf: hpke.HKDFSHA384(), aead: hpke.ChaCha20Poly1305()},
			sig: mldsa44Scheme,
		},
		pqSuite(MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65, hpke.MLKEM768(), true, mldsa65Scheme),
		pqSuite(MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87, hpke.MLKEM1024(), true, mldsa87Scheme),
	} {
		registerSuite(s)
	}
}

// pqSuite assembles a suite of the draft: AES-128-GCM with SHA-256, or
// AES-256-GCM with SHA-384 (aes256), around a KEM from crypto/hpke.
func pqSuite(id CipherSuite, kem hpke.KEM, aes256 bool, sig signatureScheme) *suite {
	if aes256 {
		return &suite{
			id: id, newHash: sha512.New384, keySize: 32, nonceSize: 12, newAEAD: newAESGCM,
			kem: &stdHPKE{kem: kem, kdf: hpke.HKDFSHA384(), aead: hpke.AES256GCM()},
			sig: sig,
		}
	}
	return &suite{
		id: id, newHash: sha256.New, keySize: 16, nonceSize: 12, newAEAD: newAESGCM,
		kem: &stdHPKE{kem: kem, kdf: hpke.HKDFSHA256(), aead: hpke.AES128GCM()},
		sig: sig,
	}
}

// IsPostQuantum reports whether a suite's KEM resists a quantum computer
// (every suite of draft-ietf-mls-pq-ciphersuites).
func IsPostQuantum(cs CipherSuite) bool {
	s, ok := suites[cs]
	if !ok {
		return false
	}
	h, ok := s.kem.(*stdHPKE)
	if !ok {
		return false
	}
	switch h.kem.ID() {
	case hpke.MLKEM768X25519().ID(), hpke.MLKEM768P256().ID(), hpke.MLKEM1024P384().ID(),
		hpke.MLKEM768().ID(), hpke.MLKEM1024().ID():
		return true
	}
	return false
}

// checkPQPublicKey adds to crypto/hpke's parsing of a post-quantum KEM's
// public key (which runs the FIPS 203 §7.2 modulus check) what makes a key
// useless: an ML-KEM key whose vector t is zero (its ciphertexts would carry
// the shared secret in the clear), and for X-Wing an X25519 half of low
// order. The hybrids with P-256 and P-384 get their point checked by the
// parse. An ML-KEM public key is the encoded t followed by the 32-byte seed ρ;
// a hybrid key starts with it (draft-ietf-hpke-pq).
func checkPQPublicKey(kemID uint16, pub []byte) error {
	var ek int
	switch kemID {
	case hpke.MLKEM768().ID(), hpke.MLKEM768P256().ID():
		ek = mlkem.EncapsulationKeySize768
	case hpke.MLKEM768X25519().ID():
		ek = mlkem.EncapsulationKeySize768
		if len(pub) != ek+32 {
			return fmt.Errorf("%w: X-Wing public key of %d bytes", ErrInvalidKey, len(pub))
		}
		if err := checkX25519Order(pub[ek:]); err != nil {
			return err
		}
	case hpke.MLKEM1024().ID(), hpke.MLKEM1024P384().ID():
		ek = mlkem.EncapsulationKeySize1024
	default:
		return nil
	}
	if len(pub) < ek {
		return fmt.Errorf("%w: ML-KEM public key of %d bytes", ErrInvalidKey, len(pub))
	}
	for _, b := range pub[:ek-32] {
		if b != 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: ML-KEM public key with t = 0", ErrInvalidKey)
}
