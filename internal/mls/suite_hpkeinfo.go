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
	"io"

	"github.com/cloudflare/circl/dh/x25519"
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
	x25519     bool // Diffie-Hellman by circl instead of curve
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
		d.curve, d.kemHash, d.nSecret, d.x25519 = ecdh.X25519(), sha256.New, 32, true
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

// direct returns h's written-out key schedule, or nil.
func (h *stdHPKE) direct() *dhkemHKDF {
	h.directOnce.Do(func() { h.dk = newDHKEMHKDF(h.kem, h.kdf, h.aead) })
	return h.dk
}

// sealerFor is infoSealer for the crypto/hpke bindings; the KEMs it does
// not cover seal through crypto/hpke with the info as given.
func (h *stdHPKE) sealerFor(info []byte) sealFunc {
	d := h.direct()
	if d == nil {
		return func(pub, plaintext []byte) ([]byte, []byte, error) {
			return h.seal(pub, info, nil, plaintext)
		}
	}
	ksContext := d.keyScheduleContext(info)
	return func(pub, plaintext []byte) ([]byte, []byte, error) {
		return d.seal(ksContext, pub, nil, plaintext)
	}
}

// keyScheduleContext is the key_schedule_context of RFC 9180 §5.1 in
// mode_base: mode || LabeledExtract("", "psk_id_hash", "") ||
// LabeledExtract("", "info_hash", info).
func (d *dhkemHKDF) keyScheduleContext(info []byte) []byte {
	ksContext := []byte{0}
	ksContext = append(ksContext, hpkeLabeledExtract(d.kdfHash, d.suiteID, nil, "psk_id_hash", nil)...)
	return append(ksContext, hpkeLabeledExtract(d.kdfHash, d.suiteID, nil, "info_hash", info)...)
}

// encap is Encap of RFC 9180 §4.1 for DHKEM: a fresh ephemeral key from
// crypto/rand (as crypto/hpke draws it), its public key enc, and the
// Diffie-Hellman with pub.
func (d *dhkemHKDF) encap(pub []byte) (enc, dh []byte, err error) {
	if d.x25519 {
		if len(pub) != x25519.Size {
			return nil, nil, fmt.Errorf("%w: HPKE public key of %d bytes", ErrInvalidKey, len(pub))
		}
		var sk, pk, peer, shared x25519.Key
		defer clear(sk[:])
		if _, err := io.ReadFull(rand.Reader, sk[:]); err != nil {
			return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
		}
		copy(peer[:], pub)
		x25519.KeyGen(&pk, &sk)
		if !x25519.Shared(&shared, &sk, &peer) {
			return nil, nil, fmt.Errorf("mls: HPKE setup: %w: X25519 public key of low order", ErrInvalidKey)
		}
		return pk[:], shared[:], nil
	}
	pk, err := d.curve.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	eph, err := d.curve.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	if dh, err = eph.ECDH(pk); err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	return eph.PublicKey().Bytes(), dh, nil
}

// context derives the AEAD and base nonce of the HPKE context with the
// given key schedule context from the Diffie-Hellman output dh, enc and
// the recipient's public key pkR (ExtractAndExpand of §4.1, KeySchedule
// of §5.1).
func (d *dhkemHKDF) context(ksContext, dh, enc, pkR []byte) (cipher.AEAD, []byte, error) {
	kemContext := append(append(make([]byte, 0, len(enc)+len(pkR)), enc...), pkR...)
	eaePRK := hpkeLabeledExtract(d.kemHash, d.kemSuiteID, nil, "eae_prk", dh)
	defer clear(eaePRK)
	shared, err := hpkeLabeledExpand(d.kemHash, d.kemSuiteID, eaePRK, "shared_secret", kemContext, d.nSecret)
	if err != nil {
		return nil, nil, err
	}
	defer clear(shared)
	secret := hpkeLabeledExtract(d.kdfHash, d.suiteID, shared, "secret", nil)
	defer clear(secret)
	key, err := hpkeLabeledExpand(d.kdfHash, d.suiteID, secret, "key", ksContext, d.nk)
	if err != nil {
		return nil, nil, err
	}
	defer clear(key)
	nonce, err := hpkeLabeledExpand(d.kdfHash, d.suiteID, secret, "base_nonce", ksContext, d.nn)
	if err != nil {
		return nil, nil, err
	}
	a, err := d.newAEAD(key)
	if err != nil {
		return nil, nil, err
	}
	return a, nonce, nil
}

// seal is SealBase (RFC 9180 §6.1) with the given key schedule context.
func (d *dhkemHKDF) seal(ksContext, pub, aad, plaintext []byte) ([]byte, []byte, error) {
	enc, dh, err := d.encap(pub)
	if err != nil {
		return nil, nil, err
	}
	defer clear(dh)
	a, nonce, err := d.context(ksContext, dh, enc, pub)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	// The first message of the context: its nonce is base_nonce xor 0.
	return enc, a.Seal(nil, nonce, plaintext, aad), nil
}

// openX25519 is OpenBase (RFC 9180 §6.1) for the X25519 KEM with the given
// key schedule context. Errors match those of stdHPKE.open.
func (d *dhkemHKDF) openX25519(ksContext, priv, enc, aad, ct []byte) ([]byte, error) {
	if len(priv) != x25519.Size {
		return nil, fmt.Errorf("%w: HPKE private key of %d bytes", ErrInvalidKey, len(priv))
	}
	if len(enc) != x25519.Size {
		return nil, fmt.Errorf("%w: HPKE decapsulation: kem_output of %d bytes", ErrDecrypt, len(enc))
	}
	var sk, pkR, peer, shared x25519.Key
	defer clear(sk[:])
	defer clear(shared[:])
	copy(sk[:], priv)
	copy(peer[:], enc)
	x25519.KeyGen(&pkR, &sk)
	if !x25519.Shared(&shared, &sk, &peer) {
		return nil, fmt.Errorf("%w: HPKE decapsulation: X25519 key of low order", ErrDecrypt)
	}
	a, nonce, err := d.context(ksContext, shared[:], enc, pkR[:])
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation: %v", ErrDecrypt, err)
	}
	pt, err := a.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// x25519PublicKey returns the X25519 public key of the private key sk.
func x25519PublicKey(sk []byte) ([]byte, error) {
	if len(sk) != x25519.Size {
		return nil, fmt.Errorf("%w: X25519 private key of %d bytes", ErrInvalidKey, len(sk))
	}
	var k, pk x25519.Key
	copy(k[:], sk)
	x25519.KeyGen(&pk, &k)
	clear(k[:])
	return pk[:], nil
}
