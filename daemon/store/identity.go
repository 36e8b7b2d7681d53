package store

import (
	"crypto/ed25519"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The identity: this device's key D and the person's user key U. A
// single-device identity (every identity made before devices existed, and
// the first device of every user) has D == U: the row holds one seed and
// the device columns stay empty, as the previous schema wrote it. A linked
// device has its own D, the user key U (public only) and the chain U
// issued for D; a device restored from the identity backup also keeps U's
// private key (it is primary: it can link and revoke).
//
// Columns (migration 10): user_key is U (empty: U is the device key),
// user_seed U's private seed (empty: U is the device key, or this device
// does not hold it), device_cert and user_cert the two certificates of
// the device's x509 credential (empty when D == U).
const migrationDevices = `
ALTER TABLE identity ADD COLUMN user_key BLOB NOT NULL DEFAULT x'' CHECK (length(user_key) IN (0, 32));
ALTER TABLE identity ADD COLUMN user_seed BLOB NOT NULL DEFAULT x'' CHECK (length(user_seed) IN (0, 32));
ALTER TABLE identity ADD COLUMN device_cert BLOB NOT NULL DEFAULT x'';
ALTER TABLE identity ADD COLUMN user_cert BLOB NOT NULL DEFAULT x'';
`

// Identity is this device's identity: its Ed25519 device key and the
// user it belongs to.
type Identity struct {
	// PrivateKey is the device key D: the MLS leaf signature key, the
	// queue address and the TLS client certificate's key.
	PrivateKey ed25519.PrivateKey
	CreatedAt  time.Time
	// User is the user key U; nil (or equal to D) for a single-device
	// identity, where U is D.
	User ed25519.PublicKey
	// UserKey is U's private key when this device holds it (primary):
	// for a single-device identity it is PrivateKey; nil on a linked
	// device.
	UserKey ed25519.PrivateKey
	// Chain is the x509 credential of D, [device certificate issued by
	// U, U's self-signed certificate]; nil when D == U (basic credential).
	Chain [][]byte
}

// PublicKey is the device's 32-byte public key D.
func (id Identity) PublicKey() ed25519.PublicKey {
	return id.PrivateKey.Public().(ed25519.PublicKey)
}

// UserPublicKey is the person's user key U (D for a single-device
// identity).
func (id Identity) UserPublicKey() ed25519.PublicKey {
	if len(id.User) == ed25519.PublicKeySize {
		return id.User
	}
	return id.PublicKey()
}

// SingleDevice reports whether the device key is the user key (the basic
// credential form).
func (id Identity) SingleDevice() bool { return id.UserPublicKey().Equal(id.PublicKey()) }

// Primary reports whether this device holds the user's private key.
func (id Identity) Primary() bool { return len(id.UserKey) == ed25519.PrivateKeySize }

// Wipe clears the private keys.
func (id Identity) Wipe() {
	clear(id.PrivateKey)
	clear(id.UserKey)
}

// Identity returns the stored identity, or ErrNotFound before registration.
func (tx *Tx) Identity() (Identity, error) {
	if tx.identity != nil && !tx.identityPut {
		if id, ok := tx.identity.get(); ok {
			return id, nil
		}
	}
	id, err := tx.readIdentity()
	if err == nil && tx.identity != nil && !tx.identityPut {
		tx.identity.keep(id) // the committed row (identity_cache.go)
	}
	return id, err
}

func (tx *Tx) readIdentity() (Identity, error) {
	var pub, seed, userPub, userSeed, devCert, userCert []byte
	var created int64
	err := tx.queryRow(`SELECT public_key, seed, created_at, user_key, user_seed, device_cert, user_cert FROM identity WHERE id = 1`).
		Scan(&pub, &seed, &created, &userPub, &userSeed, &devCert, &userCert)
	if errors.Is(err, sql.ErrNoRows) {
		return Identity{}, fmt.Errorf("store: identity: %w", ErrNotFound)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("store: read identity: %w", err)
	}
	defer clear(seed)
	defer clear(userSeed)
	priv, err := tx.keyFromSeed(seed, pub)
	if err != nil {
		return Identity{}, fmt.Errorf("store: identity device key: %w", err)
	}
	id := Identity{PrivateKey: priv, CreatedAt: fromUnixNano(created)}
	if len(userPub) == 0 {
		if len(userSeed) != 0 || len(devCert) != 0 || len(userCert) != 0 {
			clear(priv)
			return Identity{}, fmt.Errorf("store: identity has a user seed or certificates but no user key: %w", ErrInvalid)
		}
		id.UserKey = append(ed25519.PrivateKey{}, priv...)
		return id, nil
	}
	id.User = ed25519.PublicKey(userPub)
	if len(userSeed) != 0 {
		if id.UserKey, err = tx.keyFromSeed(userSeed, userPub); err != nil {
			clear(priv)
			return Identity{}, fmt.Errorf("store: identity user key: %w", err)
		}
	}
	if !id.SingleDevice() {
		if len(devCert) == 0 || len(userCert) == 0 {
			id.Wipe()
			return Identity{}, fmt.Errorf("store: identity of a device other than the user has no certificate chain: %w", ErrInvalid)
		}
		id.Chain = [][]byte{devCert, userCert}
	}
	return id, nil
}

func (tx *Tx) keyFromSeed(seed, pub []byte) (ed25519.PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("seed has %d bytes: %w", len(seed), ErrInvalid)
	}
	priv := tx.keys.privateKey(seed) // identity_cache.go: expanded once, a copy per caller
	if subtle.ConstantTimeCompare(priv.Public().(ed25519.PublicKey), pub) != 1 {
		clear(priv)
		return nil, fmt.Errorf("public key does not match its seed: %w", ErrInvalid)
	}
	return priv, nil
}

// PutIdentity stores the identity. There is only one; a second returns
// ErrExists. A single-device identity (User nil or D) is stored exactly as
// before devices existed; another needs its chain (two certificates),
// which the caller has verified.
func (tx *Tx) PutIdentity(id Identity) error {
	if len(id.PrivateKey) != ed25519.PrivateKeySize {
		return fmt.Errorf("store: put identity: %w: private key has %d bytes", ErrInvalid, len(id.PrivateKey))
	}
	if id.User != nil && len(id.User) != ed25519.PublicKeySize {
		return fmt.Errorf("store: put identity: %w: user key has %d bytes", ErrInvalid, len(id.User))
	}
	var userPub, userSeed, devCert, userCert []byte
	switch {
	case id.SingleDevice():
		if len(id.Chain) != 0 {
			return fmt.Errorf("store: put identity: %w: a certificate chain for the user's own key", ErrInvalid)
		}
	default:
		if len(id.Chain) != 2 || len(id.Chain[0]) == 0 || len(id.Chain[1]) == 0 {
			return fmt.Errorf("store: put identity: %w: a device of another user key needs its two certificates", ErrInvalid)
		}
		userPub, devCert, userCert = id.User, id.Chain[0], id.Chain[1]
		if id.UserKey != nil {
			if len(id.UserKey) != ed25519.PrivateKeySize || !id.UserKey.Public().(ed25519.PublicKey).Equal(id.User) {
				return fmt.Errorf("store: put identity: %w: user private key is not the user key's", ErrInvalid)
			}
			userSeed = id.UserKey.Seed()
			defer clear(userSeed)
		}
	}
	created := id.CreatedAt
	if created.IsZero() {
		created = tx.now
	}
	seed := id.PrivateKey.Seed()
	defer clear(seed)
	tx.identityPut = true
	res, err := tx.exec(`INSERT INTO identity (id, public_key, seed, created_at, user_key, user_seed, device_cert, user_cert)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		[]byte(id.PublicKey()), seed, unixNano(created), nonNil(userPub), nonNil(userSeed), nonNil(devCert), nonNil(userCert))
	if err != nil {
		return fmt.Errorf("store: put identity: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: put identity: %w", ErrExists)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
