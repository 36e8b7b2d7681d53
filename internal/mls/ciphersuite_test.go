package mls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSuiteRegistry(t *testing.T) {
	want := []CipherSuite{1, 2, 3, 4, 5, 6, 7}
	for id := CipherSuite(0xF001); id <= 0xF00B; id++ {
		want = append(want, id) // draft-ietf-mls-pq-ciphersuites TBD1..TBD11
	}
	if got := SupportedSuites(); !slices.Equal(got, want) {
		t.Fatalf("SupportedSuites() = %v, want %v", got, want)
	}
	for _, id := range want {
		s, err := LookupSuite(id)
		if err != nil || s.ID() != id {
			t.Fatalf("LookupSuite(%v) = %v, %v", id, s, err)
		}
	}
	if _, err := LookupSuite(0x0a0a); !errors.Is(err, ErrUnsupportedSuite) {
		t.Fatalf("LookupSuite(0x0a0a): %v", err)
	}
	sizes := map[CipherSuite][3]int{ // Nh, Nk, Nn
		1: {32, 16, 12}, 2: {32, 16, 12}, 3: {32, 32, 12},
		4: {64, 32, 12}, 5: {64, 32, 12}, 6: {64, 32, 12}, 7: {48, 32, 12},
		0xF001: {32, 16, 12}, 0xF002: {48, 32, 12}, 0xF003: {32, 16, 12}, 0xF004: {48, 32, 12},
		0xF005: {48, 32, 12}, 0xF006: {48, 32, 12}, 0xF007: {48, 32, 12}, 0xF008: {48, 32, 12},
		0xF009: {48, 32, 12}, 0xF00A: {48, 32, 12}, 0xF00B: {48, 32, 12},
	}
	for id, sz := range sizes {
		s, _ := LookupSuite(id)
		if got := [3]int{s.HashSize(), s.AEADKeySize(), s.AEADNonceSize()}; got != sz {
			t.Errorf("suite %v sizes = %v, want %v", id, got, sz)
		}
		if len(s.Hash(nil)) != sz[0] || len(s.MAC([]byte("k"), nil)) != sz[0] || len(s.Extract(nil, []byte("x"))) != sz[0] {
			t.Errorf("suite %v: hash, MAC or Extract output is not Nh bytes", id)
		}
	}
}

// TestDeriveKeyPairRFC9180 checks DeriveKeyPair against the RFC 9180
// Appendix A test vectors (ikmR -> skRm, pkRm).
func TestDeriveKeyPairRFC9180(t *testing.T) {
	for _, c := range []struct {
		suite       CipherSuite
		ikm, sk, pk string
	}{
		{1, "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
			"4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
			"3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"},
		{2, "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550",
			"f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
			"04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0"},
		{5, "2ad954bbe39b7122529f7dde780bff626cd97f850d0784a432784e69d86eccaade43b6c10a8ffdb94bf943c6da479db137914ec835a7e715e36e45e29b587bab3bf1",
			"01462680369ae375e4b3791070a7458ed527842f6a98a79ff5e0d4cbde83c27196a3916956655523a6a2556a7af62c5cadabe2ef9da3760bb21e005202f7b2462847",
			"0401b45498c1714e2dce167d3caf162e45e0642afc7ed435df7902ccae0e84ba0f7d373f646b7738bbbdca11ed91bdeae3cdcba3301f2457be452f271fa6837580e661012af49583a62e48d44bed350c7118c0d8dc861c238c72a2bda17f64704f464b57338e7f40b60959480c0e58e6559b190d81663ed816e523b6b6a418f66d2451ec64"},
	} {
		s, _ := LookupSuite(c.suite)
		ikm, _ := hex.DecodeString(c.ikm)
		sk, pk, err := s.DeriveKeyPair(ikm)
		if err != nil {
			t.Fatalf("suite %v: %v", c.suite, err)
		}
		if hex.EncodeToString(sk) != c.sk || hex.EncodeToString(pk) != c.pk {
			t.Errorf("suite %v: DeriveKeyPair = %x, %x\nwant %s, %s", c.suite, sk, pk, c.sk, c.pk)
		}
	}
}

// suiteExercise runs every primitive of a suite on fresh keys and checks
// that failures are reported as errors, not panics.
func suiteExercise(t *testing.T, s Suite) {
	t.Helper()
	// AEAD.
	key := bytes.Repeat([]byte{1}, s.AEADKeySize())
	nonce := bytes.Repeat([]byte{2}, s.AEADNonceSize())
	ct, err := s.Seal(key, nonce, []byte("aad"), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := s.Open(key, nonce, []byte("aad"), ct); err != nil || string(pt) != "hello" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := s.Open(key, nonce, []byte("other"), ct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Open with other aad: %v", err)
	}
	if _, err := s.Seal(key[1:], nonce, nil, nil); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Seal with a short key: %v", err)
	}
	if _, err := s.Open(key, nonce[1:], nil, ct); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Open with a short nonce: %v", err)
	}

	// HPKE with generated and derived keys.
	priv, pub, err := s.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	enc, hct, err := s.HPKESeal(pub, []byte("info"), []byte("aad"), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := s.HPKEOpen(priv, enc, []byte("info"), []byte("aad"), hct); err != nil || string(pt) != "secret" {
		t.Fatalf("HPKEOpen = %q, %v", pt, err)
	}
	if _, err := s.HPKEOpen(priv, enc, []byte("info"), []byte("aaD"), hct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("HPKEOpen with other aad: %v", err)
	}
	if _, err := s.HPKEOpen(priv, enc[:len(enc)-1], []byte("info"), []byte("aad"), hct); err == nil {
		t.Fatal("HPKEOpen accepted a short kem_output")
	}
	if _, _, err := s.HPKESeal(pub[:len(pub)-1], nil, nil, nil); err == nil {
		t.Fatal("HPKESeal accepted a short public key")
	}
	if _, err := s.HPKEOpen(priv[:len(priv)-1], enc, nil, nil, hct); err == nil {
		t.Fatal("HPKEOpen accepted a short private key")
	}
	ikm := bytes.Repeat([]byte{5}, s.HashSize())
	d1, p1, err := s.DeriveKeyPair(ikm)
	if err != nil {
		t.Fatal(err)
	}
	d2, p2, _ := s.DeriveKeyPair(ikm)
	if !bytes.Equal(d1, d2) || !bytes.Equal(p1, p2) {
		t.Fatal("DeriveKeyPair is not deterministic")
	}
	enc, hct, err = EncryptWithLabel(s, p1, "Test", []byte("ctx"), []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := DecryptWithLabel(s, d1, "Test", []byte("ctx"), enc, hct); err != nil || string(pt) != "m" {
		t.Fatalf("DecryptWithLabel with derived key = %q, %v", pt, err)
	}
	if _, err := DecryptWithLabel(s, priv, "Test", []byte("ctx"), enc, hct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("DecryptWithLabel with another key: %v", err)
	}

	// HPKE exporter (external commits).
	enc, exp, err := s.HPKEExportSender(pub, nil, "MLS 1.0 external init secret", s.HashSize())
	if err != nil || len(exp) != s.HashSize() {
		t.Fatalf("HPKEExportSender: %d bytes, %v", len(exp), err)
	}
	if got, err := s.HPKEExportReceiver(priv, enc, nil, "MLS 1.0 external init secret", s.HashSize()); err != nil || !bytes.Equal(got, exp) {
		t.Fatalf("HPKEExportReceiver = %x, %v, want %x", got, err, exp)
	}
	if got, err := s.HPKEExportReceiver(priv, enc, nil, "other", s.HashSize()); err != nil || bytes.Equal(got, exp) {
		t.Fatalf("HPKEExportReceiver with another context = %x, %v", got, err)
	}
	if got, err := s.HPKEExportReceiver(d1, enc, nil, "MLS 1.0 external init secret", s.HashSize()); err == nil && bytes.Equal(got, exp) {
		t.Fatal("HPKEExportReceiver with another key gave the same secret")
	}

	// Signatures.
	sp, spub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignWithLabel(s, sp, "Test", []byte("content"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyWithLabel(s, spub, "Test", []byte("content"), sig); err != nil {
		t.Fatal(err)
	}
	if err := VerifyWithLabel(s, spub, "Test", []byte("content"), sig[:len(sig)-1]); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("truncated signature: %v", err)
	}
	if err := VerifyWithLabel(s, spub[:len(spub)-1], "Test", []byte("content"), sig); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("short public key: %v", err)
	}
	if err := VerifyWithLabel(s, nil, "Test", []byte("content"), sig); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("empty public key: %v", err)
	}
	// A short private key is an error, or (for ECDSA, where leading zero
	// bytes may be dropped) a different key whose signature does not verify.
	if sig, err := SignWithLabel(s, sp[:len(sp)-1], "Test", []byte("content")); err == nil {
		if VerifyWithLabel(s, spub, "Test", []byte("content"), sig) == nil {
			t.Fatal("a truncated private key made a valid signature")
		}
	}
	if _, err := SignWithLabel(s, append(bytes.Clone(sp), 0), "Test", nil); err == nil {
		t.Fatal("SignWithLabel accepted a long private key")
	}

	// KDF bounds.
	if _, err := ExpandWithLabel(s, ikm, "x", nil, 255*s.HashSize()+1); err == nil {
		t.Fatal("ExpandWithLabel accepted a length over 255*Nh")
	}
	if _, err := ExpandWithLabel(s, ikm, "x", nil, -1); err == nil {
		t.Fatal("ExpandWithLabel accepted a negative length")
	}
}

func TestSuitePrimitives(t *testing.T) {
	for _, id := range SupportedSuites() {
		t.Run(id.String(), func(t *testing.T) {
			s, _ := LookupSuite(id)
			suiteExercise(t, s)
		})
	}
}

// TestXWingSuite shows that a post-quantum KEM (X-Wing, MLKEM768-X25519 from
// crypto/hpke) slots into the same Suite value and labeled functions.
func TestXWingSuite(t *testing.T) {
	s, err := LookupSuite(MLS_128_XWING)
	if err != nil {
		t.Fatal(err)
	}
	suiteExercise(t, s)
	priv, pub, err := s.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	// X-Wing: 32-byte seed private key, 1216-byte public key, 1120-byte
	// encapsulation.
	enc, _, err := s.HPKESeal(pub, nil, nil, nil)
	if err != nil || len(priv) != 32 || len(pub) != 1216 || len(enc) != 1120 {
		t.Fatalf("X-Wing sizes: priv %d pub %d enc %d, %v", len(priv), len(pub), len(enc), err)
	}
}

// TestShortScalarKeys checks that P-521 private keys written without their
// leading zero byte (65 instead of 66 bytes, as some encoders do) work for
// both signing and HPKE.
func TestShortScalarKeys(t *testing.T) {
	s, _ := LookupSuite(MLS_256_DHKEMP521_AES256GCM_SHA512_P521)
	var sigDone, hpkeDone bool
	for range 200 {
		if !sigDone {
			priv, pub, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatal(err)
			}
			if len(priv) == 66 && priv[0] == 0 {
				sig, err := SignWithLabel(s, priv[1:], "Test", []byte("c"))
				if err != nil {
					t.Fatalf("sign with a 65-byte key: %v", err)
				}
				if err := VerifyWithLabel(s, pub, "Test", []byte("c"), sig); err != nil {
					t.Fatal(err)
				}
				sigDone = true
			}
		}
		if !hpkeDone {
			priv, pub, err := s.GenerateKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if len(priv) == 66 && priv[0] == 0 {
				enc, ct, err := EncryptWithLabel(s, pub, "Test", nil, []byte("m"))
				if err != nil {
					t.Fatal(err)
				}
				if pt, err := DecryptWithLabel(s, priv[1:], "Test", nil, enc, ct); err != nil || string(pt) != "m" {
					t.Fatalf("decrypt with a 65-byte key: %q, %v", pt, err)
				}
				hpkeDone = true
			}
		}
		if sigDone && hpkeDone {
			return
		}
	}
	t.Fatal("no P-521 key with a leading zero byte in 200 tries")
}

func TestLabelPrefix(t *testing.T) {
	// SignContent for label "X", content "c": opaque "MLS 1.0 X", opaque "c".
	got := signContent("X", []byte("c"))
	want := append([]byte{9}, "MLS 1.0 X"...)
	want = append(want, 1, 'c')
	if !bytes.Equal(got, want) {
		t.Fatalf("SignContent = %x, want %x", got, want)
	}
	if !strings.HasPrefix(string(got[1:]), labelPrefix) {
		t.Fatal("label prefix missing")
	}
}
