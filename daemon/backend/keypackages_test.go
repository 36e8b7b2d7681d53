package backend

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/mls"
)

func TestInspectKeyPackage(t *testing.T) {
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	pub := id.Public().(ed25519.PublicKey)
	kp, err := MLSKeyPackages{}.NewKeyPackage(testSigner(id), 0, true, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	info := inspectKeyPackage(SameKeyRule{}, kp.KeyPackage, pub, time.Now())
	if !info.Valid || !info.LastResort || !bytes.Equal(info.Ref, kp.Ref) || !bytes.Equal(info.Identity, pub) {
		t.Fatalf("own KeyPackage: %+v", info)
	}
	if info.NotBefore.After(time.Now()) || info.NotAfter.Before(time.Now().Add(24*time.Hour)) {
		t.Errorf("lifetime %v .. %v", info.NotBefore, info.NotAfter)
	}
	// Asked for someone else: the credential does not match.
	other := ed25519.PublicKey(bytes.Repeat([]byte{1}, 32))
	if info := inspectKeyPackage(SameKeyRule{}, kp.KeyPackage, other, time.Now()); info.Valid || info.Problem == "" {
		t.Errorf("KeyPackage for another peer accepted: %+v", info)
	}
	// Expired.
	if info := inspectKeyPackage(SameKeyRule{}, kp.KeyPackage, pub, time.Now().Add(200*24*time.Hour)); info.Valid {
		t.Errorf("expired KeyPackage accepted: %+v", info)
	}
	// Valid now, but for longer than any KeyPackage qpd accepts (RFC 9420
	// §7.2: the application sets a maximum total lifetime).
	long, _, err := mls.GenerateKeyPackage(mls.CipherSuite(1), &mls.Signer{
		Credential: mls.NewBasicCredential(pub), SignaturePub: pub, SignaturePriv: id.Seed(),
	}, &mls.KeyPackageParams{Lifetime: MaxKeyPackageLifetime + time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if info := inspectKeyPackage(SameKeyRule{}, long.Marshal(), pub, time.Now()); info.Valid || !strings.Contains(info.Problem, "longer than") {
		t.Errorf("KeyPackage valid for more than %v accepted: %+v", MaxKeyPackageLifetime, info)
	}
	// A flipped signature bit.
	bad := bytes.Clone(kp.KeyPackage)
	bad[len(bad)-1] ^= 1
	if info := inspectKeyPackage(SameKeyRule{}, bad, pub, time.Now()); info.Valid || info.Problem == "" {
		t.Errorf("tampered KeyPackage accepted: %+v", info)
	}
}

func FuzzInspectKeyPackage(f *testing.F) {
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	pub := id.Public().(ed25519.PublicKey)
	for _, lr := range []bool{false, true} {
		kp, err := MLSKeyPackages{}.NewKeyPackage(testSigner(id), 0, lr, time.Time{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kp.KeyPackage)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		info := inspectKeyPackage(SameKeyRule{}, raw, pub, time.Now())
		if !info.Valid && info.Problem == "" {
			t.Fatal("invalid KeyPackage without a reason")
		}
		if info.Valid && !bytes.Equal(info.Identity, pub) {
			t.Fatal("valid KeyPackage for another identity")
		}
	})
}
