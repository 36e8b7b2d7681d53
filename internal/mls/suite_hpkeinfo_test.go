package mls

import (
	"bytes"
	"errors"
	"testing"
)

// TestHPKEInfoSealer checks the encryptions with a precomputed info hash
// against the suites' own HPKE: for every suite, what encryptorWithLabel
// seals, DecryptWithLabel (crypto/hpke or circl) opens, for an empty, a
// short and a large context; a wrong context or label does not open; and a
// key that is not a public key of the suite's KEM is refused. Suites 1,
// 2, 3, 5 and 7 use the key schedule written out here.
func TestHPKEInfoSealer(t *testing.T) {
	for _, id := range SupportedSuites() {
		s, err := LookupSuite(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(id.Name(), func(t *testing.T) {
			priv, pub, err := s.GenerateKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			direct := false
			if h, ok := s.(*suite).kem.(*stdHPKE); ok {
				direct = newDHKEMHKDF(h.kem, h.kdf, h.aead) != nil
			}
			if want := id <= 7 && id != 4 && id != 6; direct != want {
				t.Fatalf("key schedule written out: %v, want %v", direct, want)
			}
			for _, n := range []int{0, 40, 300 << 10} {
				ctx := bytes.Repeat([]byte{byte(n)}, n)
				seal := encryptorWithLabel(s, "Welcome", ctx)
				for k := range 3 {
					pt := bytes.Repeat([]byte{byte(k + 1)}, 16+k*40)
					kem, ct, err := seal(pub, pt)
					if err != nil {
						t.Fatal(err)
					}
					got, err := DecryptWithLabel(s, priv, "Welcome", ctx, kem, ct)
					if err != nil {
						t.Fatalf("context of %d bytes, message %d: %v", n, k, err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatalf("context of %d bytes, message %d: decrypted %x, want %x", n, k, got, pt)
					}
					if _, err := DecryptWithLabel(s, priv, "Welcome", append(ctx, 0), kem, ct); !errors.Is(err, ErrDecrypt) {
						t.Errorf("opened with another context: %v", err)
					}
					if _, err := DecryptWithLabel(s, priv, "UpdatePathNode", ctx, kem, ct); !errors.Is(err, ErrDecrypt) {
						t.Errorf("opened with another label: %v", err)
					}
				}
			}
			seal := encryptorWithLabel(s, "Welcome", nil)
			for _, bad := range [][]byte{nil, pub[:len(pub)-1], append(bytes.Clone(pub), 0)} {
				if _, _, err := seal(bad, []byte("x")); err == nil {
					t.Errorf("sealed to a key of %d bytes", len(bad))
				}
			}
		})
	}
}

// TestHPKEInfoSealerLowOrder: a low-order X25519 key is refused, as
// crypto/hpke refuses it (the Diffie-Hellman output is all zeros).
func TestHPKEInfoSealerLowOrder(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	seal := encryptorWithLabel(s, "Welcome", []byte("context"))
	for i, e := range x25519LowOrder {
		if _, _, err := seal(e[:], []byte("secret")); err == nil {
			t.Errorf("entry %d: sealed to a low-order key", i)
		}
		if _, _, err := EncryptWithLabel(s, e[:], "Welcome", []byte("context"), []byte("secret")); err == nil {
			t.Errorf("entry %d: crypto/hpke sealed to a low-order key", i)
		}
	}
}
