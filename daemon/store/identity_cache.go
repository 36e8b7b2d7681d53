package store

import (
	"crypto/ed25519"
	"crypto/subtle"
	"sync"
)

// Reading the identity expands its seed into the Ed25519 private key, a
// scalar multiplication, and the daemon reads it for every send and every
// received message. The store keeps the last expansion and reuses it for
// the same seed (compared in constant time); a new seed is expanded anew.

// expandedKey is the last seed expanded and its key.
type expandedKey struct {
	mu   sync.Mutex
	seed []byte
	priv ed25519.PrivateKey
}

// privateKey returns the private key of seed, a copy the caller owns.
func (k *expandedKey) privateKey(seed []byte) ed25519.PrivateKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.seed) != len(seed) || subtle.ConstantTimeCompare(k.seed, seed) != 1 {
		clear(k.seed)
		clear(k.priv)
		k.seed, k.priv = append([]byte(nil), seed...), ed25519.NewKeyFromSeed(seed)
	}
	return append(ed25519.PrivateKey(nil), k.priv...)
}
