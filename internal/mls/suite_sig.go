package mls

// Signature schemes of the RFC 9420 suites: Ed25519, ECDSA over P-256, P-384
// and P-521 (DER signatures over the suite hash of the message), and Ed448
// with an empty context string.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"fmt"

	"github.com/cloudflare/circl/sign/ed448"
)

type ed25519Scheme struct{}

// generate draws the private key (the RFC 8032 seed) from the package
// randomness source.
func (ed25519Scheme) generate() ([]byte, []byte, error) {
	seed, err := randomBytes(ed25519.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: generate Ed25519 key: %w", err)
	}
	k := ed25519.NewKeyFromSeed(seed)
	pub := bytes.Clone(k.Public().(ed25519.PublicKey))
	clear(k)
	return seed, pub, nil
}

func (ed25519Scheme) sign(priv, message []byte) ([]byte, error) {
	if len(priv) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: Ed25519 private key is %d bytes", ErrInvalidKey, len(priv))
	}
	return ed25519.Sign(ed25519.NewKeyFromSeed(priv), message), nil
}

func (ed25519Scheme) verify(pub, message, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: Ed25519 public key is %d bytes", ErrInvalidSignature, len(pub))
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), message, sig) {
		return ErrInvalidSignature
	}
	return nil
}

type ed448Scheme struct{}

// generate draws the private key (the RFC 8032 seed) from the package
// randomness source.
func (ed448Scheme) generate() ([]byte, []byte, error) {
	seed, err := randomBytes(ed448.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: generate Ed448 key: %w", err)
	}
	k := ed448.NewKeyFromSeed(seed)
	pub := bytes.Clone(k.Public().(ed448.PublicKey))
	clear(k)
	return seed, pub, nil
}

func (ed448Scheme) sign(priv, message []byte) ([]byte, error) {
	if len(priv) != ed448.SeedSize {
		return nil, fmt.Errorf("%w: Ed448 private key is %d bytes", ErrInvalidKey, len(priv))
	}
	return ed448.Sign(ed448.NewKeyFromSeed(priv), message, ""), nil
}

func (ed448Scheme) verify(pub, message, sig []byte) error {
	if len(pub) != ed448.PublicKeySize {
		return fmt.Errorf("%w: Ed448 public key is %d bytes", ErrInvalidSignature, len(pub))
	}
	if !ed448.Verify(ed448.PublicKey(pub), message, sig, "") {
		return ErrInvalidSignature
	}
	return nil
}

type ecdsaScheme struct {
	curve elliptic.Curve
	hash  crypto.Hash
}

// leftPad returns b left-padded with zeros to n bytes. Some encoders drop
// the leading zero bytes of a big-endian scalar (a P-521 scalar is 66 bytes,
// and often written as 65); such a key is accepted in its full form.
func leftPad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

func (e ecdsaScheme) digest(message []byte) []byte {
	h := e.hash.New()
	h.Write(message)
	return h.Sum(nil)
}

// ecdsaKeyDraws bounds the rejection sampling of generate. A draw is
// rejected with probability below 2^-32 for every supported curve, so only
// a broken randomness source reaches the bound.
const ecdsaKeyDraws = 64

// generate draws the private scalar from the package randomness source by
// rejection sampling (FIPS 186-5 §A.2.2): a draw of the order's bit length
// that is zero or not below the order is drawn again.
func (e ecdsaScheme) generate() ([]byte, []byte, error) {
	bits := e.curve.Params().BitSize
	b := make([]byte, (bits+7)/8)
	defer clear(b)
	var k *ecdsa.PrivateKey
	var err error
	for range ecdsaKeyDraws {
		if rerr := readRandom(b); rerr != nil {
			return nil, nil, fmt.Errorf("mls: generate ECDSA key: %w", rerr)
		}
		b[0] &= 0xff >> (len(b)*8 - bits)
		if k, err = ecdsa.ParseRawPrivateKey(e.curve, b); err == nil {
			break
		}
	}
	if k == nil {
		return nil, nil, fmt.Errorf("mls: generate ECDSA key: no valid scalar in %d draws: %w", ecdsaKeyDraws, err)
	}
	priv, err := k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: serialize ECDSA key: %w", err)
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: serialize ECDSA key: %w", err)
	}
	return priv, pub, nil
}

func (e ecdsaScheme) sign(priv, message []byte) ([]byte, error) {
	k, err := ecdsa.ParseRawPrivateKey(e.curve, leftPad(priv, (e.curve.Params().BitSize+7)/8))
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA private key: %v", ErrInvalidKey, err)
	}
	// Since Go 1.26 the signature nonce comes from crypto/rand whatever
	// reader is passed here (see random.go).
	sig, err := ecdsa.SignASN1(randSource, k, e.digest(message))
	if err != nil {
		return nil, fmt.Errorf("mls: ECDSA sign: %w", err)
	}
	return sig, nil
}

func (e ecdsaScheme) verify(pub, message, sig []byte) error {
	k, err := ecdsa.ParseUncompressedPublicKey(e.curve, pub)
	if err != nil {
		return fmt.Errorf("%w: ECDSA public key: %v", ErrInvalidSignature, err)
	}
	if !ecdsa.VerifyASN1(k, e.digest(message), sig) {
		return ErrInvalidSignature
	}
	return nil
}
