package mls

// The registry of implemented cipher suites (RFC 9420 §17.1). Each suite is a
// value assembled from primitives; adding one is adding an entry here.

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"

	circlhpke "github.com/cloudflare/circl/hpke"
	"golang.org/x/crypto/chacha20poly1305"
)

func newAESGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func newChaCha20Poly1305(key []byte) (cipher.AEAD, error) { return chacha20poly1305.New(key) }

func init() {
	registerSuite(&suite{
		id:      MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
		newHash: sha256.New, keySize: 16, nonceSize: 12, newAEAD: newAESGCM,
		kem: &stdHPKE{kem: hpke.DHKEM(ecdh.X25519()), kdf: hpke.HKDFSHA256(), aead: hpke.AES128GCM(), x25519: true},
		sig: ed25519Scheme{},
	})
	registerSuite(&suite{
		id:      MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
		newHash: sha256.New, keySize: 16, nonceSize: 12, newAEAD: newAESGCM,
		kem: &stdHPKE{kem: hpke.DHKEM(ecdh.P256()), kdf: hpke.HKDFSHA256(), aead: hpke.AES128GCM(), scalarSize: 32},
		sig: ecdsaScheme{curve: elliptic.P256(), hash: crypto.SHA256},
	})
	registerSuite(&suite{
		id:      MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
		newHash: sha256.New, keySize: 32, nonceSize: 12, newAEAD: newChaCha20Poly1305,
		kem: &stdHPKE{kem: hpke.DHKEM(ecdh.X25519()), kdf: hpke.HKDFSHA256(), aead: hpke.ChaCha20Poly1305(), x25519: true},
		sig: ed25519Scheme{},
	})
	registerSuite(&suite{
		id:      MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448,
		newHash: sha512.New, keySize: 32, nonceSize: 12, newAEAD: newAESGCM,
		kem: &circlHPKE{
			kem:   circlhpke.KEM_X448_HKDF_SHA512,
			suite: circlhpke.NewSuite(circlhpke.KEM_X448_HKDF_SHA512, circlhpke.KDF_HKDF_SHA512, circlhpke.AEAD_AES256GCM),
		},
		sig: ed448Scheme{},
	})
	registerSuite(&suite{
		id:      MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
		newHash: sha512.New, keySize: 32, nonceSize: 12, newAEAD: newAESGCM,
		kem: &stdHPKE{kem: hpke.DHKEM(ecdh.P521()), kdf: hpke.HKDFSHA512(), aead: hpke.AES256GCM(), scalarSize: 66},
		sig: ecdsaScheme{curve: elliptic.P521(), hash: crypto.SHA512},
	})
	registerSuite(&suite{
		id:      MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448,
		newHash: sha512.New, keySize: 32, nonceSize: 12, newAEAD: newChaCha20Poly1305,
		kem: &circlHPKE{
			kem:   circlhpke.KEM_X448_HKDF_SHA512,
			suite: circlhpke.NewSuite(circlhpke.KEM_X448_HKDF_SHA512, circlhpke.KDF_HKDF_SHA512, circlhpke.AEAD_ChaCha20Poly1305),
		},
		sig: ed448Scheme{},
	})
	registerSuite(&suite{
		id:      MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
		newHash: sha512.New384, keySize: 32, nonceSize: 12, newAEAD: newAESGCM,
		kem: &stdHPKE{kem: hpke.DHKEM(ecdh.P384()), kdf: hpke.HKDFSHA384(), aead: hpke.AES256GCM(), scalarSize: 48},
		sig: ecdsaScheme{curve: elliptic.P384(), hash: crypto.SHA384},
	})
}
