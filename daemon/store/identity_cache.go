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

// wipe clears the kept seed and key.
func (k *expandedKey) wipe() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.seed)
	clear(k.priv)
	k.seed, k.priv = nil, nil
}

// The identity row is written once (PutIdentity refuses a second) and
// never changed, so the identity read from the committed row stays what
// the disk holds: the store keeps it, and later reads, one for every send
// and every received message, run no statement. A transaction that wrote
// the row reads it from the disk: until it commits, the row may yet roll
// back.

// identityMemo is the committed identity, once read.
type identityMemo struct {
	mu sync.Mutex
	id *Identity
}

// get returns a copy of the kept identity, which the caller owns.
func (m *identityMemo) get() (Identity, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.id == nil {
		return Identity{}, false
	}
	return copyIdentity(*m.id), true
}

// keep keeps a copy of id, read from the committed row.
func (m *identityMemo) keep(id Identity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.id == nil {
		c := copyIdentity(id)
		m.id = &c
	}
}

// forget wipes the kept identity.
func (m *identityMemo) forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.id != nil {
		m.id.Wipe()
		m.id = nil
	}
}

func copyIdentity(id Identity) Identity {
	c := Identity{CreatedAt: id.CreatedAt}
	c.PrivateKey = append(ed25519.PrivateKey(nil), id.PrivateKey...)
	if id.User != nil {
		c.User = append(ed25519.PublicKey(nil), id.User...)
	}
	if id.UserKey != nil {
		c.UserKey = append(ed25519.PrivateKey(nil), id.UserKey...)
	}
	for _, cert := range id.Chain {
		c.Chain = append(c.Chain, append([]byte(nil), cert...))
	}
	return c
}
