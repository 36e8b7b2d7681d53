package mls

import (
	"crypto/ecdh"
	"fmt"

	"github.com/cloudflare/circl/dh/x448"
)

// This file validates HPKE public keys received from others (RFC 9420
// §7.3, §10.1): a key must parse for the suite's KEM, and an X25519 or
// X448 key must not be a low-order point, which would make every shared
// secret with it a constant (an all-zero key breaks every later path
// encrypted to it).

// lowOrderProbe is a fixed scalar for the low-order test: a Diffie-Hellman
// with a low-order point gives the all-zero output, whatever the scalar.
var lowOrderProbe = [56]byte{9}

func (h *stdHPKE) checkPublicKey(pub []byte) error {
	if _, err := h.kem.NewPublicKey(pub); err != nil {
		return fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	if !h.x25519 {
		return checkPQPublicKey(h.kem.ID(), pub)
	}
	return checkX25519Order(pub)
}

// checkX25519Order refuses an X25519 public key of low order.
func checkX25519Order(pub []byte) error {
	pk, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: X25519 public key: %v", ErrInvalidKey, err)
	}
	sk, err := ecdh.X25519().NewPrivateKey(lowOrderProbe[:32])
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if _, err := sk.ECDH(pk); err != nil { // all-zero output: low order
		return fmt.Errorf("%w: X25519 public key of low order", ErrInvalidKey)
	}
	return nil
}

func (h *circlHPKE) checkPublicKey(pub []byte) error {
	if _, err := h.kem.Scheme().UnmarshalBinaryPublicKey(pub); err != nil {
		return fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	if len(pub) != x448.Size {
		return fmt.Errorf("%w: X448 public key of %d bytes", ErrInvalidKey, len(pub))
	}
	var shared, sk, pk x448.Key
	copy(sk[:], lowOrderProbe[:])
	copy(pk[:], pub)
	if !x448.Shared(&shared, &sk, &pk) {
		return fmt.Errorf("%w: X448 public key of low order", ErrInvalidKey)
	}
	return nil
}
