package transport

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// IdentityKeySize is the size of an Ed25519 public key, a client's identity.
const IdentityKeySize = ed25519.PublicKeySize

// ErrBadCertificate: a peer's certificate is not acceptable (not self-signed,
// not Ed25519 where an identity is required, unparsable).
var ErrBadCertificate = errors.New("transport: bad certificate")

// CertLifetime is how long generated certificates are valid: a year. A
// node renews its certificate with the same key RenewBefore its end (at
// start and while it runs); clients pin the node's key, not the
// certificate, so a renewal changes nothing for them.
const (
	CertLifetime = 365 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
)

// selfSigned makes a self-signed certificate for pub, signed by priv,
// valid for CertLifetime from now.
func selfSigned(commonName string, pub crypto.PublicKey, priv crypto.Signer, usage x509.ExtKeyUsage, dnsNames []string) ([]byte, error) {
	return selfSignedFor(commonName, pub, priv, usage, dnsNames, CertLifetime)
}

func selfSignedFor(commonName string, pub crypto.PublicKey, priv crypto.Signer, usage x509.ExtKeyUsage, dnsNames []string, lifetime time.Duration) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("transport: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("transport: create certificate: %w", err)
	}
	return der, nil
}

// ServerName is the name a node's generated certificate carries. Clients
// authenticate the node by pinning, not by name.
const ServerName = "qpnode"

// NewServerCert generates a self-signed Ed25519 node certificate. It returns
// the certificate and the PKCS #8 private key, both DER.
func NewServerCert() (certDER, keyDER []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: generate node key: %w", err)
	}
	certDER, err = selfSigned(ServerName, pub, priv, x509.ExtKeyUsageServerAuth, []string{ServerName})
	if err != nil {
		return nil, nil, err
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: marshal node key: %w", err)
	}
	return certDER, keyDER, nil
}

// LoadOrCreateServerCert reads the node certificate (DER) and key (PKCS #8
// DER) from certPath and keyPath. When both are missing it generates a new
// pair and writes them (key mode 0600); when only one is present it fails
// rather than replace the other. An existing key file that its group or
// others may read is restricted to its owner. created reports whether it
// generated them.
func LoadOrCreateServerCert(certPath, keyPath string) (cert tls.Certificate, created bool, err error) {
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		certDER, keyDER, err := NewServerCert()
		if err != nil {
			return tls.Certificate{}, false, err
		}
		if err := writeFileAtomic(keyPath, keyDER, 0o600); err != nil {
			return tls.Certificate{}, false, err
		}
		if err := writeFileAtomic(certPath, certDER, 0o644); err != nil {
			return tls.Certificate{}, false, err
		}
		created = true
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return tls.Certificate{}, false, fmt.Errorf("transport: node certificate: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return tls.Certificate{}, false, fmt.Errorf("transport: node key: %w", keyErr)
	case certErr != nil || keyErr != nil:
		return tls.Certificate{}, false, fmt.Errorf("transport: only one of %s and %s exists; restore the other or remove both to generate a new certificate", certPath, keyPath)
	}
	if err := restrictKeyMode(keyPath); err != nil {
		return tls.Certificate{}, false, err
	}
	cert, err = LoadServerCert(certPath, keyPath)
	return cert, created, err
}

// RenewalDue reports whether cert ends within RenewBefore of now.
func RenewalDue(cert tls.Certificate, now time.Time) bool {
	return cert.Leaf != nil && now.After(cert.Leaf.NotAfter.Add(-RenewBefore))
}

// RenewServerCert issues a new self-signed certificate for cert's key (same
// subject and names, valid for lifetime from now) and writes it to
// certPath. The key does not change, so clients that pin it keep
// connecting.
func RenewServerCert(cert tls.Certificate, certPath string, lifetime time.Duration) (tls.Certificate, error) {
	key, ok := cert.PrivateKey.(crypto.Signer)
	if !ok || cert.Leaf == nil {
		return tls.Certificate{}, errors.New("transport: renew node certificate: no parsed certificate and signing key")
	}
	der, err := selfSignedFor(cert.Leaf.Subject.CommonName, key.Public(), key, x509.ExtKeyUsageServerAuth, cert.Leaf.DNSNames, lifetime)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: parse renewed certificate: %w", err)
	}
	if err := writeFileAtomic(certPath, der, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// CertSource serves a node's certificate to TLS handshakes and renews it
// (same key, written to its file) when RenewalDue, so that a node running
// for longer than a certificate's lifetime keeps presenting a valid one.
type CertSource struct {
	path  string
	onNew func(tls.Certificate, error)
	mu    sync.Mutex
	cert  tls.Certificate
}

// NewCertSource serves cert, renewing it into path; onNew (if set) is told
// of each renewal or failure to renew.
func NewCertSource(cert tls.Certificate, path string, onNew func(tls.Certificate, error)) *CertSource {
	return &CertSource{cert: cert, path: path, onNew: onNew}
}

// GetCertificate is a tls.Config's GetCertificate.
func (c *CertSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if RenewalDue(c.cert, time.Now()) {
		cert, err := RenewServerCert(c.cert, c.path, CertLifetime)
		if err == nil {
			c.cert = cert
		}
		if c.onNew != nil {
			c.onNew(cert, err)
		}
		// On failure keep serving the old certificate: clients check
		// the key, and the next handshake tries again.
	}
	cert := c.cert
	return &cert, nil
}

// restrictKeyMode makes a private key file that its group or others may
// access readable by its owner only (mode 0600 or narrower), and fails if
// that cannot be done.
func restrictKeyMode(keyPath string) error {
	fi, err := os.Stat(keyPath)
	if err != nil {
		return fmt.Errorf("transport: node key: %w", err)
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(keyPath, perm&0o600); err != nil {
		return fmt.Errorf("transport: node key %s has mode %v, open to others, and cannot be restricted to its owner: %w", keyPath, perm, err)
	}
	return nil
}

// LoadServerCert reads a DER certificate and a DER private key (PKCS #8,
// or SEC 1 for ECDSA) and checks that they belong together.
func LoadServerCert(certPath, keyPath string) (tls.Certificate, error) {
	certDER, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: read node certificate: %w", err)
	}
	keyDER, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: read node key: %w", err)
	}
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: parse node certificate %s: %w", certPath, err)
	}
	var key crypto.Signer
	if k, err := x509.ParsePKCS8PrivateKey(keyDER); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return tls.Certificate{}, fmt.Errorf("transport: node key %s: unsupported key type %T", keyPath, k)
		}
		key = s
	} else if k, ecErr := x509.ParseECPrivateKey(keyDER); ecErr == nil {
		key = k
	} else {
		return tls.Certificate{}, fmt.Errorf("transport: parse node key %s: %w", keyPath, err)
	}
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return tls.Certificate{}, fmt.Errorf("transport: node key %s does not match certificate %s", keyPath, certPath)
	}
	return tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key, Leaf: leaf}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("transport: create %s: %w", dir, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("transport: write %s: %w", path, err)
	}
	return nil
}

// ClientCertificate makes the self-signed TLS certificate that presents
// identity's public key to a node.
func ClientCertificate(identity ed25519.PrivateKey) (tls.Certificate, error) {
	if len(identity) != ed25519.PrivateKeySize {
		return tls.Certificate{}, fmt.Errorf("transport: identity key has %d bytes, want %d", len(identity), ed25519.PrivateKeySize)
	}
	pub := identity.Public().(ed25519.PublicKey)
	der, err := selfSigned(hex.EncodeToString(pub), pub, identity, x509.ExtKeyUsageClientAuth, nil)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: parse client certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: identity, Leaf: leaf}, nil
}

// VerifySelfSigned parses der and checks that it is signed by its own key.
func VerifySelfSigned(der []byte) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: not self-signed: %w", ErrBadCertificate, err)
	}
	return cert, nil
}

// IdentityFromCertificate returns the Ed25519 identity key a client
// certificate carries, after checking its self-signature.
func IdentityFromCertificate(der []byte) (ed25519.PublicKey, error) {
	cert, err := VerifySelfSigned(der)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: client key is %T, want Ed25519", ErrBadCertificate, cert.PublicKey)
	}
	return pub, nil
}

// CertFingerprint is the SHA-256 of a DER certificate.
func CertFingerprint(der []byte) [32]byte { return sha256.Sum256(der) }

// KeyFingerprint is the SHA-256 of a DER certificate's public key (its
// SubjectPublicKeyInfo): what clients pin, so that a certificate renewed
// with the same key still matches.
func KeyFingerprint(der []byte) ([32]byte, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo), nil
}

// SameKey reports whether two DER certificates carry the same public key
// (constant time in the keys).
func SameKey(a, b []byte) bool {
	ka, err := KeyFingerprint(a)
	if err != nil {
		return false
	}
	kb, err := KeyFingerprint(b)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(ka[:], kb[:]) == 1
}
