package mls

// This file encrypts many HPKE messages that share one info (RFC 9180
// base mode). A Welcome seals one GroupSecrets per new member with the
// whole encrypted GroupInfo in its info (RFC 9420 §12.4.3.1), and an
// UpdatePath seals one path secret per resolution node with the
// GroupContext in its info (§7.6). The key schedule of RFC 9180 §5.1
// hashes the info on every call (info_hash), which for a Welcome of a
// thousand members is a thousand hashes of the same few hundred kilobytes:
// more than the encryptions themselves. Here the info hash is computed once
// and each encryption does only its KEM encapsulation, the key schedule
// with that hash, and one AEAD seal.
//
// The standard library's crypto/hpke does not take a precomputed info
// hash, so for the DHKEMs over crypto/ecdh curves with an HKDF (suites 1, 2,
// 3, 5 and 7) the encapsulation and key schedule are written out here, from
// the same primitives crypto/hpke uses; TestHPKEInfoSealer checks every such
// suite against crypto/hpke's Open. Other KEMs (X448, the post-quantum
// ones) seal through their binding as before.

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealFunc encrypts plaintext to the HPKE public key pub, with the info
// and empty aad the function was made for.
type sealFunc func(pub, plaintext []byte) (kemOutput, ciphertext []byte, err error)

// infoSealer is an HPKE binding that can precompute the key schedule's
// info hash for many encryptions.
type infoSealer interface {
	sealerFor(info []byte) sealFunc
}

// encryptorWithLabel returns a function that does EncryptWithLabel(s, pub,
// label, context, plaintext) for any pub and plaintext, hashing the
// EncryptContext once. The function is safe for concurrent use.
func encryptorWithLabel(s Suite, label string, context []byte) sealFunc {
	info := signContent(label, context)
	var seal sealFunc
	if su, ok := s.(*suite); ok {
		if is, ok := su.kem.(infoSealer); ok {
			seal = is.sealerFor(info)
		}
	}
	if seal == nil {
		seal = func(pub, plaintext []byte) ([]byte, []byte, error) {
			return s.HPKESeal(pub, info, nil, plaintext)
		}
	}
	return func(pub, plaintext []byte) ([]byte, []byte, error) {
		kemOutput, ciphertext, err := seal(pub, plaintext)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: EncryptWithLabel %q: %w", label, err)
		}
		return kemOutput, ciphertext, nil
	}
}

// dhkemHKDF is one (DHKEM over a crypto/ecdh curve, HKDF, AEAD)
// combination of RFC 9180.
type dhkemHKDF struct {
	curve      ecdh.Curve
	kemHash    func() hash.Hash // the KEM's own HKDF hash
	nSecret    int              // Nsecret of the KEM
	kdfHash    func() hash.Hash
	nk, nn     int
	newAEAD    func(key []byte) (cipher.AEAD, error)
	kemSuiteID []byte // "KEM" || kem_id
	suiteID    []byte // "HPKE" || kem_id || kdf_id || aead_id
}

// newDHKEMHKDF returns the combination for the given algorithms, or nil
// when one of them is not written out here.
func newDHKEMHKDF(kem hpke.KEM, kdf hpke.KDF, aead hpke.AEAD) *dhkemHKDF {
	d := &dhkemHKDF{}
	switch kem.ID() {
	case 0x0010:
		d.curve, d.kemHash, d.nSecret = ecdh.P256(), sha256.New, 32
	case 0x0011:
		d.curve, d.kemHash, d.nSecret = ecdh.P384(), sha512.New384, 48
	case 0x0012:
		d.curve, d.kemHash, d.nSecret = ecdh.P521(), sha512.New, 64
	case kemIDX25519:
		d.curve, d.kemHash, d.nSecret = ecdh.X25519(), sha256.New, 32
	default:
		return nil
	}
	switch kdf.ID() {
	case 0x0001:
		d.kdfHash = sha256.New
	case 0x0002:
		d.kdfHash = sha512.New384
	case 0x0003:
		d.kdfHash = sha512.New
	default:
		return nil
	}
	switch aead.ID() {
	case 0x0001:
		d.nk, d.nn, d.newAEAD = 16, 12, newAESGCM
	case 0x0002:
		d.nk, d.nn, d.newAEAD = 32, 12, newAESGCM
	case 0x0003:
		d.nk, d.nn, d.newAEAD = chacha20poly1305.KeySize, chacha20poly1305.NonceSize, chacha20poly1305.New
	default:
		return nil
	}
	d.kemSuiteID = AppendUint16([]byte("KEM"), kem.ID())
	d.suiteID = AppendUint16(AppendUint16(AppendUint16([]byte("HPKE"), kem.ID()), kdf.ID()), aead.ID())
	return d
}

// sealerFor is infoSealer for the crypto/hpke bindings; the KEMs it does
// not cover seal through crypto/hpke with the info as given.
func (h *stdHPKE) sealerFor(info []byte) sealFunc {
	d := newDHKEMHKDF(h.kem, h.kdf, h.aead)
	if d == nil {
		return func(pub, plaintext []byte) ([]byte, []byte, error) {
			return h.seal(pub, info, nil, plaintext)
		}
	}
	// RFC 9180 §5.1, mode_base: key_schedule_context = mode ||
	// LabeledExtract("", "psk_id_hash", "") || LabeledExtract("",
	// "info_hash", info).
	ksContext := []byte{0}
	ksContext = append(ksContext, hpkeLabeledExtract(d.kdfHash, d.suiteID, nil, "psk_id_hash", nil)...)
	ksContext = append(ksContext, hpkeLabeledExtract(d.kdfHash, d.suiteID, nil, "info_hash", info)...)
	return func(pub, plaintext []byte) ([]byte, []byte, error) {
		return d.seal(ksContext, pub, plaintext)
	}
}

// seal is SealBase (RFC 9180 §6.1) with empty aad and the given key
// schedule context.
func (d *dhkemHKDF) seal(ksContext, pub, plaintext []byte) ([]byte, []byte, error) {
	pk, err := d.curve.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	// Encap (§4.1): an ephemeral key from crypto/rand, as crypto/hpke
	// draws it.
	eph, err := d.curve.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	dh, err := eph.ECDH(pk)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	defer clear(dh)
	enc := eph.PublicKey().Bytes()
	kemContext := append(append(make([]byte, 0, 2*len(enc)), enc...), pub...)
	eaePRK := hpkeLabeledExtract(d.kemHash, d.kemSuiteID, nil, "eae_prk", dh)
	defer clear(eaePRK)
	shared, err := hpkeLabeledExpand(d.kemHash, d.kemSuiteID, eaePRK, "shared_secret", kemContext, d.nSecret)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	defer clear(shared)
	// KeySchedule (§5.1) with the precomputed context.
	secret := hpkeLabeledExtract(d.kdfHash, d.suiteID, shared, "secret", nil)
	defer clear(secret)
	key, err := hpkeLabeledExpand(d.kdfHash, d.suiteID, secret, "key", ksContext, d.nk)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	defer clear(key)
	nonce, err := hpkeLabeledExpand(d.kdfHash, d.suiteID, secret, "base_nonce", ksContext, d.nn)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	a, err := d.newAEAD(key)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	// The first message of the context: its nonce is base_nonce xor 0.
	return enc, a.Seal(nil, nonce, plaintext, nil), nil
}
