package mls

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"
)

// lowOrderByDH is the direct test of an X25519 key's order: the
// Diffie-Hellman of a fixed clamped scalar with it is all zeros.
func lowOrderByDH(t *testing.T, pub []byte) bool {
	t.Helper()
	pk, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ecdh.X25519().NewPrivateKey(lowOrderProbe[:32])
	if err != nil {
		t.Fatal(err)
	}
	_, err = sk.ECDH(pk)
	return err != nil
}

// TestX25519LowOrderTable checks the table of low-order encodings against
// the Diffie-Hellman test: every entry, with bit 255 clear or set, is of
// low order and refused; random keys and fresh public keys are neither.
func TestX25519LowOrderTable(t *testing.T) {
	for i, e := range x25519LowOrder {
		for _, high := range []byte{0, 0x80} {
			pub := e
			pub[31] |= high
			if !lowOrderByDH(t, pub[:]) {
				t.Errorf("entry %d (bit 255 %#x) is not of low order", i, high)
			}
			if err := checkX25519Order(pub[:]); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("entry %d (bit 255 %#x) accepted: %v", i, high, err)
			}
		}
	}
	for i := range 2000 {
		pub := make([]byte, 32)
		if i%2 == 0 {
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			pub = k.PublicKey().Bytes()
		} else if _, err := rand.Read(pub); err != nil {
			t.Fatal(err)
		}
		if lowOrderByDH(t, pub) != (checkX25519Order(pub) != nil) {
			t.Fatalf("the table and the Diffie-Hellman disagree on %x", pub)
		}
	}
}
