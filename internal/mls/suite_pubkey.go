package mls

import (
	"crypto/ecdh"
	"crypto/subtle"
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

// checkX25519Order refuses an X25519 public key of low order. It compares
// the key with the known low-order encodings instead of computing a
// Diffie-Hellman with it (a scalar multiplication, as much as an HPKE
// encryption): TestX25519LowOrderTable checks the two agree.
func checkX25519Order(pub []byte) error {
	if _, err := ecdh.X25519().NewPublicKey(pub); err != nil {
		return fmt.Errorf("%w: X25519 public key: %v", ErrInvalidKey, err)
	}
	var u [32]byte
	copy(u[:], pub)
	u[31] &= 0x7f // X25519 ignores bit 255 (RFC 7748 §5)
	low := 0
	for i := range x25519LowOrder {
		low |= subtle.ConstantTimeCompare(u[:], x25519LowOrder[i][:])
	}
	if low == 1 {
		return fmt.Errorf("%w: X25519 public key of low order", ErrInvalidKey)
	}
	return nil
}

// x25519LowOrder are the little-endian encodings, bit 255 clear, of the
// u-coordinates of the points of order dividing 8 on Curve25519 and its
// twist — 0, 1, p-1 and the two points of order 8 — and the non-canonical
// encodings p and p+1 of 0 and 1 (the others exceed 2^255). A
// Diffie-Hellman with a clamped scalar, a multiple of 8, gives the
// all-zero output exactly for these.
var x25519LowOrder = [7][32]byte{
	{},
	{1},
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
		0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	x25519Encoding(0xec), // p-1
	x25519Encoding(0xed), // p
	x25519Encoding(0xee), // p+1
}

// x25519Encoding returns the encoding of 2^255 - 19 + (low - 0xed): low
// byte low, then all ones, with bit 255 clear.
func x25519Encoding(low byte) [32]byte {
	var b [32]byte
	for i := range b {
		b[i] = 0xff
	}
	b[0], b[31] = low, 0x7f
	return b
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
