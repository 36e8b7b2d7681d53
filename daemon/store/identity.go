package store

import (
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Identity is the user's Ed25519 identity key pair.
type Identity struct {
	PrivateKey ed25519.PrivateKey
	CreatedAt  time.Time
}

// PublicKey is the identity's 32-byte public key.
func (id Identity) PublicKey() ed25519.PublicKey {
	return id.PrivateKey.Public().(ed25519.PublicKey)
}

// Identity returns the stored identity, or ErrNotFound before registration.
func (tx *Tx) Identity() (Identity, error) {
	var pub, seed []byte
	var created int64
	err := tx.queryRow(`SELECT public_key, seed, created_at FROM identity WHERE id = 1`).Scan(&pub, &seed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Identity{}, fmt.Errorf("store: identity: %w", ErrNotFound)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("store: read identity: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return Identity{}, fmt.Errorf("store: identity seed has %d bytes: %w", len(seed), ErrInvalid)
	}
	priv := tx.keys.privateKey(seed) // identity_cache.go
	clear(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(pub)) {
		return Identity{}, fmt.Errorf("store: identity public key does not match its seed: %w", ErrInvalid)
	}
	return Identity{PrivateKey: priv, CreatedAt: fromUnixNano(created)}, nil
}

// PutIdentity stores the identity. There is only one; a second returns
// ErrExists.
func (tx *Tx) PutIdentity(id Identity) error {
	if len(id.PrivateKey) != ed25519.PrivateKeySize {
		return fmt.Errorf("store: put identity: %w: private key has %d bytes", ErrInvalid, len(id.PrivateKey))
	}
	created := id.CreatedAt
	if created.IsZero() {
		created = tx.now
	}
	res, err := tx.exec(`INSERT INTO identity (id, public_key, seed, created_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		[]byte(id.PublicKey()), id.PrivateKey.Seed(), unixNano(created))
	if err != nil {
		return fmt.Errorf("store: put identity: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: put identity: %w", ErrExists)
	}
	return nil
}
