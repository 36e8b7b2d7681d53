package mls

// ML-DSA (FIPS 204) signatures from circl, for the ML-DSA suites of
// draft-ietf-mls-pq-ciphersuites. A private key is the 32-byte seed ξ of
// ML-DSA.KeyGen (like the Ed25519 seed), a public key the encoded pk of
// FIPS 204 §7.2, a signature the pure ML-DSA.Sign of the message with an
// empty context string (as in draft-ietf-tls-mldsa). Signing is hedged: its
// 32 random bytes come from crypto/rand inside circl, like the ECDSA nonce
// (see random.go); key seeds come from the package source.

import (
	"fmt"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

type mldsaScheme struct {
	scheme sign.Scheme
	// signTo is the parameter set's hedged SignTo with an empty context.
	signTo func(sk sign.PrivateKey, msg, sig []byte) error
}

var (
	mldsa44Scheme = mldsaScheme{mldsa44.Scheme(), func(sk sign.PrivateKey, msg, sig []byte) error {
		return mldsa44.SignTo(sk.(*mldsa44.PrivateKey), msg, nil, true, sig)
	}}
	mldsa65Scheme = mldsaScheme{mldsa65.Scheme(), func(sk sign.PrivateKey, msg, sig []byte) error {
		return mldsa65.SignTo(sk.(*mldsa65.PrivateKey), msg, nil, true, sig)
	}}
	mldsa87Scheme = mldsaScheme{mldsa87.Scheme(), func(sk sign.PrivateKey, msg, sig []byte) error {
		return mldsa87.SignTo(sk.(*mldsa87.PrivateKey), msg, nil, true, sig)
	}}
)

// publicKey derives the encoded public key of a seed.
func (m mldsaScheme) publicKey(seed []byte) ([]byte, error) {
	if len(seed) != m.scheme.SeedSize() {
		return nil, fmt.Errorf("%w: %s private key is %d bytes", ErrInvalidKey, m.scheme.Name(), len(seed))
	}
	pk, _ := m.scheme.DeriveKey(seed)
	pub, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: serialize %s key: %w", m.scheme.Name(), err)
	}
	return pub, nil
}

func (m mldsaScheme) generate() ([]byte, []byte, error) {
	seed, err := randomBytes(m.scheme.SeedSize())
	if err != nil {
		return nil, nil, fmt.Errorf("mls: generate %s key: %w", m.scheme.Name(), err)
	}
	pub, err := m.publicKey(seed)
	if err != nil {
		clear(seed)
		return nil, nil, err
	}
	return seed, pub, nil
}

func (m mldsaScheme) sign(priv, message []byte) ([]byte, error) {
	if len(priv) != m.scheme.SeedSize() {
		return nil, fmt.Errorf("%w: %s private key is %d bytes", ErrInvalidKey, m.scheme.Name(), len(priv))
	}
	_, sk := m.scheme.DeriveKey(priv)
	sig := make([]byte, m.scheme.SignatureSize())
	if err := m.signTo(sk, message, sig); err != nil {
		return nil, fmt.Errorf("mls: %s sign: %w", m.scheme.Name(), err)
	}
	return sig, nil
}

func (m mldsaScheme) verify(pub, message, sig []byte) error {
	pk, err := m.scheme.UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: %s public key: %v", ErrInvalidSignature, m.scheme.Name(), err)
	}
	if len(sig) != m.scheme.SignatureSize() || !m.scheme.Verify(pk, message, sig, nil) {
		return ErrInvalidSignature
	}
	return nil
}
