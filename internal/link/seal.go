package link

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// This file derives the slot and the keys of a code and seals the two
// messages.

// SlotSize is the size of a rendezvous slot id.
const SlotSize = 32

// The boxes of a slot.
const (
	BoxRequest  uint8 = 0 // new device to primary
	BoxResponse uint8 = 1 // primary to new device
)

// MaxPayload bounds a sealed message (the node's limit for a box).
const MaxPayload = 64 << 10

// ErrSealed: a sealed message that does not open under the code (another
// code, or changed, moved or made up on the way).
var ErrSealed = errors.New("link: message does not open under this code")

// Keys are what a code derives.
type Keys struct {
	Slot     [SlotSize]byte
	request  [chacha20poly1305.KeySize]byte
	response [chacha20poly1305.KeySize]byte
}

// Derive derives the slot and the two direction keys of s.
func Derive(s Secret) (*Keys, error) {
	k := new(Keys)
	for _, d := range []struct {
		info string
		out  []byte
	}{{"qpq-link-slot", k.Slot[:]}, {"qpq-link-request", k.request[:]}, {"qpq-link-response", k.response[:]}} {
		b, err := hkdf.Key(sha256.New, s[:], nil, d.info, len(d.out))
		if err != nil {
			return nil, fmt.Errorf("link: derive: %w", err)
		}
		copy(d.out, b)
		clear(b)
	}
	return k, nil
}

// Wipe clears the keys.
func (k *Keys) Wipe() { clear(k.request[:]); clear(k.response[:]) }

func (k *Keys) key(box uint8) ([]byte, error) {
	switch box {
	case BoxRequest:
		return k.request[:], nil
	case BoxResponse:
		return k.response[:], nil
	}
	return nil, fmt.Errorf("link: no box %d", box)
}

func (k *Keys) ad(box uint8) []byte {
	ad := make([]byte, 0, len("qpq-link-v1")+SlotSize+1)
	ad = append(ad, "qpq-link-v1"...)
	ad = append(ad, k.Slot[:]...)
	return append(ad, box)
}

// Seal encrypts plaintext for box: a random 24-byte nonce, then the
// XChaCha20-Poly1305 ciphertext with the slot and box as associated data.
func (k *Keys) Seal(box uint8, plaintext []byte) ([]byte, error) {
	key, err := k.key(box)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("link: cipher: %w", err)
	}
	if len(plaintext)+chacha20poly1305.NonceSizeX+aead.Overhead() > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes to seal, limit %d", ErrMalformed, len(plaintext), MaxPayload)
	}
	out := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("link: nonce: %w", err)
	}
	return aead.Seal(out, out, plaintext, k.ad(box)), nil
}

// Open decrypts a message Seal made for box; anything else fails with
// ErrSealed.
func (k *Keys) Open(box uint8, sealed []byte) ([]byte, error) {
	key, err := k.key(box)
	if err != nil {
		return nil, err
	}
	if len(sealed) > MaxPayload || len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: %d bytes", ErrSealed, len(sealed))
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("link: cipher: %w", err)
	}
	n := chacha20poly1305.NonceSizeX
	pt, err := aead.Open(nil, sealed[:n], sealed[n:], k.ad(box))
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}
