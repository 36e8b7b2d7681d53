package mls

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
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

// TestX25519AgainstECDH checks circl's X25519 against crypto/ecdh: the
// public key of random private keys, and the Diffie-Hellman of random key
// pairs through an HPKE round trip.
func TestX25519AgainstECDH(t *testing.T) {
	for range 200 {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x25519PublicKey(k.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pub, k.PublicKey().Bytes()) {
			t.Fatalf("public key of %x: %x, crypto/ecdh %x", k.Bytes(), pub, k.PublicKey().Bytes())
		}
	}
	if _, err := x25519PublicKey(make([]byte, 31)); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("private key of 31 bytes: %v", err)
	}
}

// TestHPKEX25519AgainstStd: for the X25519 suites, what this package
// seals crypto/hpke opens and the other way round, with and without aad;
// a changed ciphertext, kem output, info or aad fails with ErrDecrypt.
func TestHPKEX25519AgainstStd(t *testing.T) {
	for _, id := range []CipherSuite{MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519} {
		s, err := LookupSuite(id)
		if err != nil {
			t.Fatal(err)
		}
		h := s.(*suite).kem.(*stdHPKE)
		for _, aad := range [][]byte{nil, []byte("aad")} {
			priv, pub, err := s.GenerateKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			info, pt := []byte("info"), []byte("plaintext of the test")
			pk, err := h.kem.NewPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := h.kem.NewPrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			// Ours to crypto/hpke.
			enc, ct, err := s.HPKESeal(pub, info, aad, pt)
			if err != nil {
				t.Fatal(err)
			}
			r, err := hpke.NewRecipient(enc, sk, h.kdf, h.aead, info)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.Open(aad, ct); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v: crypto/hpke opens %q, %v", id, got, err)
			}
			// crypto/hpke to ours.
			enc, snd, err := hpke.NewSender(pk, h.kdf, h.aead, info)
			if err != nil {
				t.Fatal(err)
			}
			ct, err = snd.Seal(aad, pt)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.HPKEOpen(priv, enc, info, aad, ct); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v: opens crypto/hpke's as %q, %v", id, got, err)
			}
			flip := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-1] ^= 1; return c }
			for name, try := range map[string]func() error{
				"ciphertext": func() error { _, err := s.HPKEOpen(priv, enc, info, aad, flip(ct)); return err },
				"kem output": func() error { _, err := s.HPKEOpen(priv, flip(enc), info, aad, ct); return err },
				"info":       func() error { _, err := s.HPKEOpen(priv, enc, flip(info), aad, ct); return err },
				"aad":        func() error { _, err := s.HPKEOpen(priv, enc, info, append(bytes.Clone(aad), 1), ct); return err },
				"short enc":  func() error { _, err := s.HPKEOpen(priv, enc[:31], info, aad, ct); return err },
				"low order":  func() error { _, err := s.HPKEOpen(priv, make([]byte, 32), info, aad, ct); return err },
			} {
				if err := try(); !errors.Is(err, ErrDecrypt) {
					t.Errorf("%v: changed %s: %v", id, name, err)
				}
			}
			if _, err := s.HPKEOpen(priv[:31], enc, info, aad, ct); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%v: private key of 31 bytes: %v", id, err)
			}
		}
	}
}
