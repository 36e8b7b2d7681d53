package mls

import (
	"bytes"
	"errors"
	"testing"
)

// kpNew makes a KeyPackage for suite s valid from 100 to 200.
func kpNew(t *testing.T, s Suite) (*KeyPackage, []byte) {
	t.Helper()
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	kp, initPriv, encPriv, err := NewKeyPackage(s, KeyPackageOptions{
		Credential:    NewBasicCredential([]byte("alice")),
		SignaturePriv: priv,
		SignaturePub:  pub,
		Lifetime:      Lifetime{NotBefore: 100, NotAfter: 200},
		Extensions:    []Extension{{Type: ExtensionLastResort, Data: []byte{}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(initPriv) == 0 || len(encPriv) == 0 || bytes.Equal(initPriv, encPriv) {
		t.Fatal("NewKeyPackage returned bad private keys")
	}
	return kp, initPriv
}

func TestKeyPackageValidate(t *testing.T) {
	for _, id := range SupportedSuites() {
		t.Run(id.String(), func(t *testing.T) {
			s, err := LookupSuite(id)
			if err != nil {
				t.Fatal(err)
			}
			kp, _ := kpNew(t, s)
			back, err := ParseKeyPackage(kp.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Marshal(), kp.Marshal()) || !bytes.Equal(back.Ref(s), kp.Ref(s)) {
				t.Fatal("KeyPackage does not round-trip")
			}
			if len(kp.Ref(s)) != s.HashSize() {
				t.Fatalf("ref is %d bytes", len(kp.Ref(s)))
			}
			if err := back.Validate(s, 150); err != nil {
				t.Fatal(err)
			}
			for _, now := range []uint64{99, 201} {
				if err := back.Validate(s, now); !errors.Is(err, ErrInvalidKeyPackage) {
					t.Fatalf("at %d: got %v, want ErrInvalidKeyPackage", now, err)
				}
			}
			bad := *back
			bad.Extensions = []Extension{}
			if err := bad.Validate(s, 150); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("changed extensions: got %v, want ErrInvalidSignature", err)
			}
			bad = *back
			bad.InitKey = bad.LeafNode.EncryptionKey
			if err := bad.Validate(s, 150); !errors.Is(err, ErrInvalidKeyPackage) {
				t.Fatalf("init key = encryption key: got %v, want ErrInvalidKeyPackage", err)
			}
			bad = *back
			bad.Version = 2
			if err := bad.Validate(s, 150); !errors.Is(err, ErrInvalidKeyPackage) {
				t.Fatalf("version 2: got %v, want ErrInvalidKeyPackage", err)
			}
			bad = *back
			bad.LeafNode.Capabilities.Versions = []ProtocolVersion{MLS10, 7}
			if err := bad.Validate(s, 150); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("changed leaf: got %v, want ErrInvalidSignature", err)
			}
			for _, other := range SupportedSuites() {
				if other == id {
					continue
				}
				os, _ := LookupSuite(other)
				if err := back.Validate(os, 150); !errors.Is(err, ErrInvalidKeyPackage) {
					t.Fatalf("suite %v: got %v, want ErrInvalidKeyPackage", other, err)
				}
				break
			}
		})
	}
}
