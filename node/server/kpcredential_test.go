package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// realKeyPackages returns a basic KeyPackage (the single-device form) and
// an x509 one of a device certified by its user, with the device's key.
func realKeyPackages(t testing.TB) (basic, x509 []byte, device ed25519.PublicKey) {
	t.Helper()
	u, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub := u.PublicKey()
	bs := &mls.Signer{Credential: mls.NewBasicCredential(pub), SignaturePub: pub, SignaturePriv: u.Key.Seed()}
	dpub, dpriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := u.IssueDevice(dpub, "laptop", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := devid.Signer(chain, dpriv)
	if err != nil {
		t.Fatal(err)
	}
	var out [2][]byte
	for i, s := range []*mls.Signer{bs, ds} {
		kp, _, err := mls.GenerateKeyPackage(mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = kp.Marshal()
	}
	return out[0], out[1], dpub
}

// The node reads both credential types of real KeyPackages: the basic
// identity, and the x509 chain that devid verifies for the device's key.
func TestKeyPackageCredentialOfRealPackages(t *testing.T) {
	basic, x509, device := realKeyPackages(t)
	c, err := keyPackageCredential(basic)
	if err != nil || c.Type != credentialTypeBasic || !bytes.Equal(c.Identity, c.SignatureKey) {
		t.Fatalf("basic: %+v, %v", c, err)
	}
	c, err = keyPackageCredential(x509)
	if err != nil || c.Type != credentialTypeX509 || len(c.Certificates) != 2 || !bytes.Equal(c.SignatureKey, device) {
		t.Fatalf("x509: %+v, %v", c, err)
	}
	if _, err := devid.Verify(c.Certificates, device, time.Now()); err != nil {
		t.Fatalf("the chain read from the package: %v", err)
	}
	if _, err := keyPackageIdentity(x509); !errors.Is(err, errKeyPackage) {
		t.Fatalf("keyPackageIdentity of an x509 package: %v", err)
	}
	// Truncated anywhere within the credential: a typed error.
	for i := range len(x509) {
		if _, err := keyPackageCredential(x509[:i]); err != nil && !errors.Is(err, errKeyPackage) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
}

// FuzzKeyPackageCredential feeds the credential reader hostile packages
// seeded from real basic and x509 ones: a typed error or a credential
// whose parts are slices of the input, never a panic.
func FuzzKeyPackageCredential(f *testing.F) {
	basic, x509, _ := realKeyPackages(f)
	f.Add(basic)
	f.Add(x509)
	f.Add(x509[:len(x509)/2])
	f.Add(testKeyPackagePrefix(bytes.Repeat([]byte{5}, 32), nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := keyPackageCredential(b)
		if err != nil {
			if !errors.Is(err, errKeyPackage) {
				t.Fatalf("error not errKeyPackage: %v", err)
			}
			return
		}
		total := len(c.SignatureKey) + len(c.Identity)
		for _, cert := range c.Certificates {
			total += len(cert)
		}
		if total > len(b) || len(c.Certificates) > maxKPCertificates {
			t.Fatalf("credential larger than its input: %d > %d", total, len(b))
		}
		switch c.Type {
		case credentialTypeBasic:
			if c.Certificates != nil {
				t.Fatal("basic credential with certificates")
			}
		case credentialTypeX509:
			if c.Identity != nil {
				t.Fatal("x509 credential with an identity")
			}
			// What devid makes of it is typed too.
			if _, err := devid.Verify(c.Certificates, c.SignatureKey, time.Now()); err != nil &&
				!errors.Is(err, devid.ErrMalformed) && !errors.Is(err, devid.ErrNotIssuedByUser) && !errors.Is(err, devid.ErrWrongKey) &&
				!errors.Is(err, devid.ErrExpired) && !errors.Is(err, devid.ErrWrongUsage) {
				t.Fatalf("untyped chain error: %v", err)
			}
		default:
			t.Fatalf("credential type %d accepted", c.Type)
		}
	})
}
