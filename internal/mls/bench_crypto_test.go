package mls

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/cloudflare/circl/dh/x25519"
)

// benchSuites are the suites the crypto benchmarks run for.
var benchSuites = []CipherSuite{
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
}

func forBenchSuites(b *testing.B, fn func(b *testing.B, s Suite)) {
	for _, id := range benchSuites {
		s, err := LookupSuite(id)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("suite"+id.String(), func(b *testing.B) { fn(b, s) })
	}
}

func BenchmarkSignWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s Suite) {
		priv, _, err := s.GenerateSignatureKey()
		if err != nil {
			b.Fatal(err)
		}
		content := bytes.Repeat([]byte{1}, 256)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := SignWithLabel(s, priv, "Bench", content); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s Suite) {
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			b.Fatal(err)
		}
		content := bytes.Repeat([]byte{1}, 256)
		sig, err := SignWithLabel(s, priv, "Bench", content)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := VerifyWithLabel(s, pub, "Bench", content, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHPKESeal(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s Suite) {
		_, pub, err := s.GenerateKeyPair()
		if err != nil {
			b.Fatal(err)
		}
		pt := bytes.Repeat([]byte{2}, 32) // a path secret
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := EncryptWithLabel(s, pub, "UpdatePathNode", []byte("context"), pt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHPKEOpen(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s Suite) {
		priv, pub, err := s.GenerateKeyPair()
		if err != nil {
			b.Fatal(err)
		}
		pt := bytes.Repeat([]byte{2}, 32)
		enc, ct, err := EncryptWithLabel(s, pub, "UpdatePathNode", []byte("context"), pt)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecryptWithLabel(s, priv, "UpdatePathNode", []byte("context"), enc, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkExpandWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s Suite) {
		secret := bytes.Repeat([]byte{3}, s.HashSize())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ExpandWithLabel(s, secret, "tree", []byte("left"), s.HashSize()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSecretTreeNext measures one sender ratchet step: key, nonce and
// next ratchet secret.
func BenchmarkSecretTreeNext(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s Suite) {
		st := NewSecretTree(s, bytes.Repeat([]byte{4}, s.HashSize()), 2)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := st.Next(1, ApplicationRatchet); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSecretTreeStart measures starting a leaf's ratchets in a fresh
// 1024-leaf tree (ten tree levels of derivation) and taking its first key.
func BenchmarkSecretTreeStart(b *testing.B) {
	s, _ := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	secret := bytes.Repeat([]byte{4}, s.HashSize())
	b.ReportAllocs()
	for b.Loop() {
		st := NewSecretTree(s, secret, 1024)
		if _, _, err := st.Get(777, ApplicationRatchet, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeySchedule measures one epoch of the key schedule.
func BenchmarkKeySchedule(b *testing.B) {
	s, _ := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	init := bytes.Repeat([]byte{5}, 32)
	gc := (&GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: make([]byte, 16),
		TreeHash: make([]byte, 32), ConfirmedTranscriptHash: make([]byte, 32)}).Marshal()
	b.ReportAllocs()
	for b.Loop() {
		js, err := DeriveJoinerSecret(s, init, nil, gc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DeriveEpochSecrets(s, js, nil, gc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkX25519 compares the X25519 this package uses (circl's) with
// crypto/ecdh's: the public key of a private key, and a Diffie-Hellman.
func BenchmarkX25519(b *testing.B) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	var sk, pk, shared x25519.Key
	copy(sk[:], k.Bytes())
	copy(pk[:], peer.PublicKey().Bytes())
	b.Run("public/circl", func(b *testing.B) {
		for b.Loop() {
			if _, err := x25519PublicKey(sk[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("public/ecdh", func(b *testing.B) {
		for b.Loop() {
			k, err := ecdh.X25519().NewPrivateKey(sk[:])
			if err != nil {
				b.Fatal(err)
			}
			_ = k.PublicKey().Bytes()
		}
	})
	b.Run("dh/circl", func(b *testing.B) {
		for b.Loop() {
			if !x25519.Shared(&shared, &sk, &pk) {
				b.Fatal("low order")
			}
		}
	})
	b.Run("dh/ecdh", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.ECDH(peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
