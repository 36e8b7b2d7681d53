package mls

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// kpNew makes a KeyPackage for suite s with GenerateKeyPackage and returns it
// with its init private key.
func kpNew(t *testing.T, s Suite) (*KeyPackage, []byte) {
	t.Helper()
	signer, err := NewSigner(s.ID(), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	kp, priv, err := GenerateKeyPackage(s.ID(), signer, &KeyPackageParams{LastResort: true})
	if err != nil {
		t.Fatal(err)
	}
	return kp, priv.InitPriv
}

// TestKeyPackageSignature checks the KeyPackage encoding, reference and
// KeyPackageTBS signature for every supported suite.
func TestKeyPackageSignature(t *testing.T) {
	for _, id := range SupportedSuites() {
		t.Run(id.String(), func(t *testing.T) {
			s, err := LookupSuite(id)
			if err != nil {
				t.Fatal(err)
			}
			kp, _ := kpNew(t, s)
			enc := kp.Marshal()
			back, err := ParseKeyPackage(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Marshal(), enc) || !bytes.Equal(back.Ref(s), kp.Ref(s)) {
				t.Fatal("KeyPackage does not round-trip")
			}
			if len(kp.Ref(s)) != s.HashSize() {
				t.Fatalf("ref is %d bytes", len(kp.Ref(s)))
			}
			if !bytes.Equal(kp.Ref(s), RefHash(s, "MLS 1.0 KeyPackage Reference", enc)) {
				t.Fatal("ref is not RefHash of the encoding")
			}
			if err := back.VerifySignature(s); err != nil {
				t.Fatal(err)
			}
			if err := ValidateKeyPackage(back, id, time.Now()); err != nil {
				t.Fatal(err)
			}

			// The signature covers every field but itself.
			for name, mutate := range map[string]func(k *KeyPackage){
				"extensions": func(k *KeyPackage) { k.Extensions = []Extension{} },
				"init key":   func(k *KeyPackage) { k.InitKey = append([]byte{}, k.LeafNode.EncryptionKey...) },
				"version":    func(k *KeyPackage) { k.Version = 2 },
				"suite":      func(k *KeyPackage) { k.CipherSuite ^= 0x100 },
				"leaf":       func(k *KeyPackage) { k.LeafNode.Signature = append([]byte{1}, k.LeafNode.Signature...) },
			} {
				bad, _ := ParseKeyPackage(enc)
				mutate(bad)
				if err := bad.VerifySignature(s); !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("changed %s: got %v, want ErrInvalidSignature", name, err)
				}
				if bytes.Equal(bad.Ref(s), kp.Ref(s)) {
					t.Errorf("changed %s: same ref", name)
				}
			}

			// Re-signing with the leaf's key gives a valid package again.
			signer, err := NewSigner(id, []byte("bob"))
			if err != nil {
				t.Fatal(err)
			}
			other, _ := ParseKeyPackage(enc)
			other.Extensions = []Extension{}
			if err := other.Sign(s, signer.SignaturePriv); err != nil {
				t.Fatal(err)
			}
			if err := other.VerifySignature(s); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("signed with another key: got %v, want ErrInvalidSignature", err)
			}
		})
	}
}
