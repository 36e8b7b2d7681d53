package transport

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateServerCert(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "d", "cert.der"), filepath.Join(dir, "d", "key.der")
	c1, created, err := LoadOrCreateServerCert(certPath, keyPath)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	c2, created, err := LoadOrCreateServerCert(certPath, keyPath)
	if err != nil || created {
		t.Fatalf("reload: %v, created %v", err, created)
	}
	if !bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Fatal("reload gave another certificate")
	}
	if _, err := VerifySelfSigned(c1.Certificate[0]); err != nil {
		t.Fatalf("node certificate not self-signed: %v", err)
	}

	// A key that does not match the certificate is refused.
	_, otherKey, _ := NewServerCert()
	os.WriteFile(keyPath, otherKey, 0o600)
	if _, err := LoadServerCert(certPath, keyPath); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: %v", err)
	}
	// Only one of the two files: refuse rather than overwrite.
	os.Remove(keyPath)
	if _, _, err := LoadOrCreateServerCert(certPath, keyPath); err == nil {
		t.Fatal("missing key silently replaced")
	}
	// Garbage files give errors, not panics.
	os.WriteFile(keyPath, []byte("junk"), 0o600)
	if _, err := LoadServerCert(certPath, keyPath); err == nil {
		t.Fatal("junk key accepted")
	}
	os.WriteFile(certPath, []byte("junk"), 0o600)
	if _, err := LoadServerCert(certPath, keyPath); err == nil {
		t.Fatal("junk certificate accepted")
	}
}

// A node key that others can read (copied with a careless umask, say) is
// restricted to its owner when the node loads it.
func TestLoadOrCreateServerCertRestrictsKeyMode(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.der")
	if _, _, err := LoadOrCreateServerCert(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o444} {
		if err := os.Chmod(keyPath, mode); err != nil {
			t.Fatal(err)
		}
		if _, created, err := LoadOrCreateServerCert(certPath, keyPath); err != nil || created {
			t.Fatalf("load with key mode %v: %v, created %v", mode, err, created)
		}
		fi, err := os.Stat(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if want := mode & 0o600; fi.Mode().Perm() != want {
			t.Fatalf("key mode %v after loading a key of mode %v, want %v", fi.Mode().Perm(), mode, want)
		}
	}
	// A key readable by its owner only keeps its mode.
	os.Chmod(keyPath, 0o400)
	if _, _, err := LoadOrCreateServerCert(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o400 {
		t.Fatalf("key mode %v, want 0400 kept", fi.Mode().Perm())
	}
}

func TestLoadServerCertECDSA(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := selfSigned(ServerName, &key.PublicKey, key, x509.ExtKeyUsageServerAuth, []string{ServerName})
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "c"), der, 0o644)
	os.WriteFile(filepath.Join(dir, "k"), keyDER, 0o600)
	if _, err := LoadServerCert(filepath.Join(dir, "c"), filepath.Join(dir, "k")); err != nil {
		t.Fatalf("ECDSA P-256 SEC 1 key: %v", err)
	}
}

func TestIdentityFromCertificate(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := ClientCertificate(priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := IdentityFromCertificate(cert.Certificate[0])
	if err != nil || !bytes.Equal(got, pub) {
		t.Fatalf("identity %x, %v", got, err)
	}
	bad := bytes.Clone(cert.Certificate[0])
	bad[len(bad)-1] ^= 1
	if _, err := IdentityFromCertificate(bad); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("corrupted signature: %v", err)
	}
	// A certificate for one key signed by another is not self-signed.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	der, err := selfSigned("x", pub, other, x509.ExtKeyUsageClientAuth, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IdentityFromCertificate(der); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("signed by another key: %v", err)
	}
	// ECDSA keys are not identities.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ = selfSigned("x", &ek.PublicKey, ek, x509.ExtKeyUsageClientAuth, nil)
	if _, err := IdentityFromCertificate(der); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("ECDSA client certificate: %v", err)
	}
	if _, err := ClientCertificate(priv[:10]); err == nil {
		t.Fatal("short private key accepted")
	}
}

func FuzzIdentityFromCertificate(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	cert, _ := ClientCertificate(priv)
	f.Add(cert.Certificate[0])
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := IdentityFromCertificate(der)
		if err == nil && len(pub) != IdentityKeySize {
			t.Fatalf("identity of %d bytes", len(pub))
		}
		if err != nil && !errors.Is(err, ErrBadCertificate) {
			t.Fatalf("error not ErrBadCertificate: %v", err)
		}
	})
}

// A node certificate is valid for a year; RenewalDue turns true RenewBefore
// its end; RenewServerCert and CertSource issue a new certificate with the
// same key, written to the file, that SameKey matches with the old one.
func TestCertRenewal(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.der")
	cert, _, err := LoadOrCreateServerCert(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if life := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore); life > CertLifetime+2*time.Hour || life < CertLifetime {
		t.Fatalf("node certificate valid for %v, want about %v", life, CertLifetime)
	}
	now := time.Now()
	if RenewalDue(cert, now) || !RenewalDue(cert, now.Add(CertLifetime-RenewBefore+time.Hour)) {
		t.Fatal("RenewalDue wrong")
	}
	// A certificate about to end is renewed by the source at the next handshake.
	short, err := RenewServerCert(cert, certPath, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var renewed []tls.Certificate
	src := NewCertSource(short, certPath, func(c tls.Certificate, err error) {
		if err != nil {
			t.Errorf("renew: %v", err)
		}
		renewed = append(renewed, c)
	})
	got, err := src.GetCertificate(nil)
	if err != nil || len(renewed) != 1 {
		t.Fatalf("GetCertificate: %v, %d renewals", err, len(renewed))
	}
	if again, _ := src.GetCertificate(nil); !bytes.Equal(again.Certificate[0], got.Certificate[0]) || len(renewed) != 1 {
		t.Fatal("a fresh certificate was renewed again")
	}
	if bytes.Equal(got.Certificate[0], short.Certificate[0]) || !SameKey(got.Certificate[0], cert.Certificate[0]) {
		t.Fatal("renewal did not give a new certificate with the same key")
	}
	if RenewalDue(*got, now) {
		t.Fatal("renewed certificate is due at once")
	}
	onDisk, err := LoadServerCert(certPath, keyPath)
	if err != nil || !bytes.Equal(onDisk.Certificate[0], got.Certificate[0]) {
		t.Fatalf("renewed certificate not written: %v", err)
	}
	other, _, _ := NewServerCert()
	if SameKey(other, cert.Certificate[0]) || SameKey([]byte("junk"), cert.Certificate[0]) {
		t.Fatal("SameKey matched another key")
	}
}
