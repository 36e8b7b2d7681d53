package devid

import (
	"crypto/ed25519"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// This file checks a chain: the rule every member applies to every leaf
// with an x509 credential.

// Limits of what Verify parses: a peer's credential is hostile input.
const (
	// MaxCertSize bounds each DER certificate. Ours are about 300
	// bytes; the margin is for names and extensions other tools add.
	MaxCertSize = 2048
	// ChainLength is the only accepted number of certificates.
	ChainLength = 2
	maxNameLen  = 96 // bytes of a common name: a device label, or "quicproquo user " and 64 hex digits
)

// The refusals of Verify; each error wraps one of them.
var (
	ErrMalformed       = errors.New("devid: malformed certificate chain")
	ErrNotIssuedByUser = errors.New("devid: device certificate not issued by the user identity")
	ErrWrongKey        = errors.New("devid: device certificate names another signature key")
	ErrExpired         = errors.New("devid: certificate outside its validity")
	ErrWrongUsage      = errors.New("devid: certificate has the wrong usage")
)

// Device is what a verified chain says: device key Key belongs to user
// User, from NotBefore to NotAfter.
type Device struct {
	User ed25519.PublicKey
	Key  ed25519.PublicKey
	// Name is the device's label, chosen by the user: show it, never
	// decide on it.
	Name                string
	NotBefore, NotAfter time.Time
	// Serial is the device certificate's serial number (hex): with User,
	// it names this certificate, for example in a revocation list.
	Serial string
}

// Verify checks chain (leaf first, as in an MLS x509 credential) for the
// leaf signature key sigKey at time now and returns the device it
// certifies. See the package documentation for the rule.
func Verify(chain [][]byte, sigKey []byte, now time.Time) (*Device, error) {
	dev, user, err := parseChain(chain)
	if err != nil {
		return nil, err
	}
	if err := checkUsage(dev, user); err != nil {
		return nil, err
	}
	userKey := user.PublicKey.(ed25519.PublicKey)
	if err := user.CheckSignature(x509.PureEd25519, user.RawTBSCertificate, user.Signature); err != nil {
		return nil, fmt.Errorf("%w: user certificate is not self-signed: %w", ErrNotIssuedByUser, err)
	}
	if err := user.CheckSignature(x509.PureEd25519, dev.RawTBSCertificate, dev.Signature); err != nil {
		return nil, fmt.Errorf("%w: %x: %w", ErrNotIssuedByUser, []byte(userKey), err)
	}
	devKey := dev.PublicKey.(ed25519.PublicKey)
	if len(sigKey) != ed25519.PublicKeySize || subtle.ConstantTimeCompare(devKey, sigKey) != 1 {
		return nil, fmt.Errorf("%w: certificate names %x, leaf key is %x", ErrWrongKey, []byte(devKey), truncate(sigKey))
	}
	for _, c := range []*x509.Certificate{dev, user} {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: %q valid %v to %v, now %v", ErrExpired, c.Subject.CommonName,
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	return &Device{
		User:      userKey,
		Key:       devKey,
		Name:      dev.Subject.CommonName,
		NotBefore: dev.NotBefore,
		NotAfter:  dev.NotAfter,
		Serial:    dev.SerialNumber.Text(16),
	}, nil
}

// parseChain parses exactly two bounded Ed25519 certificates.
func parseChain(chain [][]byte) (dev, user *x509.Certificate, err error) {
	if len(chain) != ChainLength {
		return nil, nil, fmt.Errorf("%w: %d certificates, want %d", ErrMalformed, len(chain), ChainLength)
	}
	certs := make([]*x509.Certificate, ChainLength)
	for i, der := range chain {
		if len(der) > MaxCertSize {
			return nil, nil, fmt.Errorf("%w: certificate %d has %d bytes, limit %d", ErrMalformed, i, len(der), MaxCertSize)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: certificate %d: %w", ErrMalformed, i, err)
		}
		if c.PublicKeyAlgorithm != x509.Ed25519 || c.SignatureAlgorithm != x509.PureEd25519 {
			return nil, nil, fmt.Errorf("%w: certificate %d is %v signed with %v, want Ed25519", ErrMalformed, i, c.PublicKeyAlgorithm, c.SignatureAlgorithm)
		}
		if len(c.Subject.CommonName) > maxNameLen {
			return nil, nil, fmt.Errorf("%w: certificate %d: name longer than %d bytes", ErrMalformed, i, maxNameLen)
		}
		certs[i] = c
	}
	return certs[0], certs[1], nil
}

// checkUsage: the user certificate is a CA that may sign certificates;
// the device certificate is an end entity that may only sign.
func checkUsage(dev, user *x509.Certificate) error {
	if !user.BasicConstraintsValid || !user.IsCA || user.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%w: user certificate is not a certificate authority", ErrWrongUsage)
	}
	if !dev.BasicConstraintsValid || dev.IsCA || dev.KeyUsage != x509.KeyUsageDigitalSignature {
		return fmt.Errorf("%w: device certificate must be a non-CA with digitalSignature usage only (CA %v, usage %#x)", ErrWrongUsage, dev.IsCA, dev.KeyUsage)
	}
	if len(dev.ExtKeyUsage) > 0 || len(dev.UnknownExtKeyUsage) > 0 {
		return fmt.Errorf("%w: device certificate has extended key usages", ErrWrongUsage)
	}
	return nil
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
