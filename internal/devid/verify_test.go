package devid

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newUser(t testing.TB) *User {
	t.Helper()
	u, err := GenerateUser(t0)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func issue(t testing.TB, u *User, dev ed25519.PublicKey) [][]byte {
	t.Helper()
	chain, err := u.IssueDevice(dev, "laptop", t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return chain
}

// rawCert signs a certificate of pub by priv, parent nil for self-signed,
// with the usage set by edit: the tests' way to make chains IssueDevice
// refuses to make.
func rawCert(t *testing.T, pub, priv any, parent *x509.Certificate, edit func(*x509.Certificate)) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(7),
		Subject:               pkix.Name{CommonName: "test"},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	if edit != nil {
		edit(tmpl)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func parse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssuedDeviceVerifies(t *testing.T) {
	u := newUser(t)
	dev, _ := newKey(t)
	chain := issue(t, u, dev)
	d, err := Verify(chain, dev, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !d.User.Equal(u.PublicKey()) || !d.Key.Equal(dev) || d.Name != "laptop" || d.Serial == "" {
		t.Fatalf("device %+v, want user %x key %x", d, u.PublicKey(), dev)
	}
	if got := d.NotAfter.Sub(t0); got != DefaultDeviceLifetime {
		t.Fatalf("device certificate lasts %v, want %v", got, DefaultDeviceLifetime)
	}
	for i, der := range chain {
		if len(der) > MaxCertSize/2 {
			t.Errorf("certificate %d has %d bytes: the size limit leaves too little margin", i, len(der))
		}
	}
}

// The user's identity key stays the key of an identity made before
// devices: its certificate is built on it.
func TestNewUserKeepsTheIdentityKey(t *testing.T) {
	pub, priv := newKey(t)
	u, err := NewUser(priv, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !u.PublicKey().Equal(pub) || !parse(t, u.Certificate).PublicKey.(ed25519.PublicKey).Equal(pub) {
		t.Fatal("user certificate is not of the identity key")
	}
	u.Wipe()
	if !isZero(u.Key) {
		t.Fatal("Wipe left the private key")
	}
	if _, err := NewUser(priv[:10], t0, 0); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("short key: %v, want ErrInvalidKey", err)
	}
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// A device certificate is never valid beyond its user certificate.
func TestDeviceLifetimeCappedByUser(t *testing.T) {
	_, priv := newKey(t)
	u, err := NewUser(priv, t0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := newKey(t)
	d, err := Verify(issue(t, u, dev), dev, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !d.NotAfter.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("device valid until %v, user until %v", d.NotAfter, t0.Add(24*time.Hour))
	}
}

// A stranger who has Alice's user certificate (it is in every one of her
// credentials) signs a device certificate with its own key.
func TestDeviceNotIssuedByUserRefused(t *testing.T) {
	alice := newUser(t)
	mallory := newUser(t)
	dev, _ := newKey(t)
	forged := issue(t, mallory, dev)
	chain := [][]byte{forged[0], alice.Certificate}
	if _, err := Verify(chain, dev, t0); !errors.Is(err, ErrNotIssuedByUser) {
		t.Fatalf("Verify = %v, want ErrNotIssuedByUser", err)
	}
}

// A user certificate for key U that U did not sign: whoever made it does
// not hold U (and U cannot have signed the device certificate either).
func TestUserCertificateNotSelfSignedRefused(t *testing.T) {
	_, uPriv := newKey(t)
	uPub := uPriv.Public().(ed25519.PublicKey)
	mPub, mPriv := newKey(t)
	caUsage := func(c *x509.Certificate) { c.IsCA, c.KeyUsage = true, x509.KeyUsageCertSign }
	mCert := parse(t, rawCert(t, mPub, mPriv, nil, caUsage))
	userDER := rawCert(t, uPub, mPriv, mCert, caUsage) // U's certificate, signed by M
	dev, _ := newKey(t)
	devDER := rawCert(t, dev, uPriv, parse(t, userDER), nil)
	if _, err := Verify([][]byte{devDER, userDER}, dev, t0); !errors.Is(err, ErrNotIssuedByUser) {
		t.Fatalf("Verify = %v, want ErrNotIssuedByUser", err)
	}
}

func TestDeviceCertificateForAnotherKeyRefused(t *testing.T) {
	u := newUser(t)
	dev, _ := newKey(t)
	other, _ := newKey(t)
	chain := issue(t, u, dev)
	for _, key := range [][]byte{other, dev[:31], nil} {
		if _, err := Verify(chain, key, t0); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("Verify for key %x = %v, want ErrWrongKey", key, err)
		}
	}
}

func TestCertificateOutsideValidityRefused(t *testing.T) {
	u := newUser(t)
	dev, _ := newKey(t)
	chain := issue(t, u, dev)
	for _, now := range []time.Time{t0.Add(-2 * time.Hour), t0.Add(DefaultDeviceLifetime + time.Second)} {
		if _, err := Verify(chain, dev, now); !errors.Is(err, ErrExpired) {
			t.Fatalf("Verify at %v = %v, want ErrExpired", now, err)
		}
	}
}

func TestWrongUsageRefused(t *testing.T) {
	u := newUser(t)
	parent := parse(t, u.Certificate)
	dev, _ := newKey(t)
	for name, edit := range map[string]func(*x509.Certificate){
		"device is a CA": func(c *x509.Certificate) {
			c.IsCA, c.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
		},
		"device may sign certs":     func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign },
		"device without usage":      func(c *x509.Certificate) { c.KeyUsage = 0 },
		"device for TLS servers":    func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} },
		"no basic constraints":      func(c *x509.Certificate) { c.BasicConstraintsValid = false },
		"device key encipherment":   func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageKeyEncipherment },
		"device data encipherment":  func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDataEncipherment },
		"device content commitment": func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageContentCommitment },
	} {
		der := rawCert(t, dev, u.Key, parent, edit)
		if _, err := Verify([][]byte{der, u.Certificate}, dev, t0); !errors.Is(err, ErrWrongUsage) {
			t.Errorf("%s: Verify = %v, want ErrWrongUsage", name, err)
		}
	}
	// A user certificate that is not a CA.
	_, uPriv := newKey(t)
	uPub := uPriv.Public().(ed25519.PublicKey)
	userDER := rawCert(t, uPub, uPriv, nil, nil)
	devDER := rawCert(t, dev, uPriv, parse(t, userDER), nil)
	if _, err := Verify([][]byte{devDER, userDER}, dev, t0); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("user not a CA: Verify = %v, want ErrWrongUsage", err)
	}
}

func TestMalformedChainsRefused(t *testing.T) {
	u := newUser(t)
	dev, _ := newKey(t)
	chain := issue(t, u, dev)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecCert := rawCert(t, &ecKey.PublicKey, ecKey, nil, nil)
	big := append(append([]byte{}, chain[0]...), make([]byte, MaxCertSize)...)
	for name, c := range map[string][][]byte{
		"empty":          nil,
		"device only":    chain[:1],
		"three":          {chain[0], chain[1], chain[1]},
		"garbage":        {[]byte("not a certificate"), chain[1]},
		"trailing bytes": {append(append([]byte{}, chain[0]...), 0), chain[1]},
		"oversized":      {big, chain[1]},
		"ecdsa device":   {ecCert, chain[1]},
		"ecdsa user":     {chain[0], ecCert},
	} {
		if _, err := Verify(c, dev, t0); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, want ErrMalformed", name, err)
		}
	}
}

func TestIssueDeviceRefusesBadInput(t *testing.T) {
	u := newUser(t)
	dev, _ := newKey(t)
	if _, err := u.IssueDevice(dev[:5], "x", t0, 0); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("short device key: %v", err)
	}
	if _, err := u.IssueDevice(dev, string(make([]byte, maxNameLen+1)), t0, 0); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("long name: %v", err)
	}
}
