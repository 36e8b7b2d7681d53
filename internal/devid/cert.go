package devid

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// This file makes the two certificates: the user's self-signed identity
// certificate and a device certificate it issues.

// DefaultUserLifetime and DefaultDeviceLifetime are the validity windows
// of new certificates when none is given. A device certificate is short
// enough that a device nobody renews falls out; the user certificate lasts
// as long as the identity is meant to.
const (
	DefaultUserLifetime   = 20 * 365 * 24 * time.Hour
	DefaultDeviceLifetime = 365 * 24 * time.Hour
)

// clockSkew is how far before now a new certificate starts, so that a
// member whose clock is a little behind accepts it.
const clockSkew = time.Hour

// ErrInvalidKey: a private or public key of the wrong size.
var ErrInvalidKey = errors.New("devid: invalid key")

// User is a user identity: the Ed25519 key pair U and its self-signed
// certificate. Its private key is the person's secret; it signs device
// certificates and nothing else.
type User struct {
	Key         ed25519.PrivateKey
	Certificate []byte // DER
}

// PublicKey is U.
func (u *User) PublicKey() ed25519.PublicKey { return u.Key.Public().(ed25519.PublicKey) }

// Wipe clears the private key.
func (u *User) Wipe() { clear(u.Key) }

// NewUser makes the identity certificate of an existing Ed25519 identity
// key (an identity made before devices keeps its key and so its safety
// numbers), valid from now for lifetime (DefaultUserLifetime if 0). The
// User holds a copy of key.
func NewUser(key ed25519.PrivateKey, now time.Time, lifetime time.Duration) (*User, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: identity key has %d bytes", ErrInvalidKey, len(key))
	}
	if lifetime <= 0 {
		lifetime = DefaultUserLifetime
	}
	pub := key.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "quicproquo user " + hex.EncodeToString(pub)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(pub),
	}
	der, err := create(tmpl, tmpl, pub, key)
	if err != nil {
		return nil, err
	}
	return &User{Key: append(ed25519.PrivateKey{}, key...), Certificate: der}, nil
}

// GenerateUser makes a new user identity key and its certificate.
func GenerateUser(now time.Time) (*User, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devid: generate identity key: %w", err)
	}
	defer clear(key)
	return NewUser(key, now, 0)
}

// IssueDevice certifies the device signature key device for u, valid from
// now for lifetime (DefaultDeviceLifetime if 0), capped at the end of the
// user certificate. name is the device's label (for example "laptop"); it
// is shown, never trusted. It returns the MLS credential's certificate
// chain, leaf first: the device certificate, then u's.
func (u *User) IssueDevice(device ed25519.PublicKey, name string, now time.Time, lifetime time.Duration) ([][]byte, error) {
	if len(device) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: device key has %d bytes", ErrInvalidKey, len(device))
	}
	if len(name) > maxNameLen {
		return nil, fmt.Errorf("%w: device name longer than %d bytes", ErrInvalidKey, maxNameLen)
	}
	parent, err := x509.ParseCertificate(u.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: user certificate: %w", ErrMalformed, err)
	}
	if lifetime <= 0 {
		lifetime = DefaultDeviceLifetime
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(parent.NotAfter) {
		notAfter = parent.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(device),
		AuthorityKeyId:        parent.SubjectKeyId,
	}
	der, err := create(tmpl, parent, device, u.Key)
	if err != nil {
		return nil, err
	}
	return [][]byte{der, append([]byte{}, u.Certificate...)}, nil
}

// create signs tmpl with a fresh random serial number.
func create(tmpl, parent *x509.Certificate, pub ed25519.PublicKey, priv ed25519.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("devid: serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("devid: create certificate: %w", err)
	}
	return der, nil
}

// keyID is the subject key identifier of an Ed25519 key: its first 20
// bytes (the key is short; no hash is needed to make it unique).
func keyID(pub ed25519.PublicKey) []byte { return append([]byte{}, pub[:20]...) }
