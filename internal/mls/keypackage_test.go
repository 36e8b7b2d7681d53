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

// TestValidateKeyPackageRFCChecks re-signs KeyPackages with changed leaves to
// show what ValidateKeyPackage refuses (RFC 9420 §7.2, §7.3, §10.1) and what
// it must let through (§13.4: unknown capability values and extensions are
// ignored; the capabilities need not list the KeyPackage's own suite).
func TestValidateKeyPackageRFCChecks(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	s, err := LookupSuite(cs)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(cs, []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	kp, _, err := GenerateKeyPackage(cs, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	const grease = 0x0a0a
	for _, tc := range []struct {
		name   string
		mutate func(k *KeyPackage)
		valid  bool
	}{
		{"unchanged", func(k *KeyPackage) {}, true},
		{"own suite and version not in capabilities", func(k *KeyPackage) {
			k.LeafNode.Capabilities.CipherSuites = []CipherSuite{MLS_128_DHKEMP256_AES128GCM_SHA256_P256}
			k.LeafNode.Capabilities.Versions = []ProtocolVersion{}
		}, true},
		{"unknown capability values", func(k *KeyPackage) {
			c := &k.LeafNode.Capabilities
			c.Versions = append(c.Versions, grease)
			c.CipherSuites = append(c.CipherSuites, grease)
			c.Extensions = append(c.Extensions, grease)
			c.Proposals = append(c.Proposals, grease)
			c.Credentials = append(c.Credentials, grease)
		}, true},
		{"unknown KeyPackage extension", func(k *KeyPackage) {
			k.Extensions = append(k.Extensions, Extension{Type: grease, Data: []byte{1, 2}})
			k.LeafNode.Capabilities.Extensions = append(k.LeafNode.Capabilities.Extensions, grease)
		}, true},
		{"KeyPackage extension not in the capabilities", func(k *KeyPackage) {
			k.Extensions = append(k.Extensions, Extension{Type: grease, Data: []byte{1, 2}})
		}, false},

		{"default leaf extension not listed", func(k *KeyPackage) {
			k.LeafNode.Extensions = append(k.LeafNode.Extensions, Extension{Type: ExtensionApplicationID, Data: []byte("app")})
		}, true},
		{"non-default leaf extension listed", func(k *KeyPackage) {
			k.LeafNode.Extensions = append(k.LeafNode.Extensions, Extension{Type: grease, Data: []byte{}})
			k.LeafNode.Capabilities.Extensions = append(k.LeafNode.Capabilities.Extensions, grease)
		}, true},
		{"non-default leaf extension not listed", func(k *KeyPackage) {
			k.LeafNode.Extensions = append(k.LeafNode.Extensions, Extension{Type: grease, Data: []byte{}})
		}, false},
		{"credential type not listed", func(k *KeyPackage) {
			k.LeafNode.Capabilities.Credentials = []CredentialType{CredentialX509}
		}, false},
		{"init key equals encryption key", func(k *KeyPackage) {
			k.InitKey = bytes.Clone(k.LeafNode.EncryptionKey)
		}, false},
		{"leaf source update", func(k *KeyPackage) {
			k.LeafNode.Source = LeafNodeSourceUpdate
			k.LeafNode.Lifetime = nil
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKeyPackage(kp.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(k)
			if err := k.LeafNode.Sign(s, signer.SignaturePriv, nil, 0); err != nil {
				t.Fatal(err)
			}
			if err := k.Sign(s, signer.SignaturePriv); err != nil {
				t.Fatal(err)
			}
			// Validate what a receiver would parse.
			got, err := ParseKeyPackage(k.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			err = ValidateKeyPackage(got, cs, time.Now())
			switch {
			case tc.valid && err != nil:
				t.Fatalf("ValidateKeyPackage: %v", err)
			case !tc.valid && !errors.Is(err, ErrInvalidKeyPackage):
				t.Fatalf("ValidateKeyPackage: got %v, want ErrInvalidKeyPackage", err)
			}
		})
	}
}
