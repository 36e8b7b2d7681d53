package mls

// HPKE (RFC 9180) bindings for the suites. DHKEM over X25519 and the NIST
// curves, and the hybrid post-quantum KEMs, come from crypto/hpke; DHKEM over
// X448 comes from circl.
//
// Private keys are exchanged in RFC 9180 SerializePrivateKey form with one
// deliberate choice for X25519 and X448: DeriveKeyPair returns the "sk" output
// of RFC 9180 §7.1.3 unclamped, which is what other MLS implementations (and
// the RFC 9420 test vectors) use. Clamping happens inside the DH function, so
// both forms denote the same key.

import (
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"sync"

	circlhpke "github.com/cloudflare/circl/hpke"
)

// RFC 9180 KEM identifiers used here.
const (
	kemIDX25519 uint16 = 0x0020
	kemIDX448   uint16 = 0x0021
)

// hpkeLabeledExtract is LabeledExtract of RFC 9180 §4.
func hpkeLabeledExtract(newHash func() hash.Hash, suiteID, salt []byte, label string, ikm []byte) []byte {
	s := &suite{newHash: newHash}
	in := append([]byte("HPKE-v1"), suiteID...)
	in = append(in, label...)
	in = append(in, ikm...)
	return s.Extract(salt, in)
}

// hpkeLabeledExpand is LabeledExpand of RFC 9180 §4.
func hpkeLabeledExpand(newHash func() hash.Hash, suiteID, prk []byte, label string, info []byte, length int) ([]byte, error) {
	s := &suite{newHash: newHash}
	in := AppendUint16(nil, uint16(length))
	in = append(in, "HPKE-v1"...)
	in = append(in, suiteID...)
	in = append(in, label...)
	in = append(in, info...)
	return s.Expand(prk, in, length)
}

// deriveXSecret is the DeriveKeyPair of RFC 9180 §7.1.3 for X25519 and X448:
// the private key is LabeledExpand(dkp_prk, "sk", "", Nsk).
func deriveXSecret(newHash func() hash.Hash, kemID uint16, nsk int, ikm []byte) ([]byte, error) {
	suiteID := AppendUint16([]byte("KEM"), kemID)
	prk := hpkeLabeledExtract(newHash, suiteID, nil, "dkp_prk", ikm)
	return hpkeLabeledExpand(newHash, suiteID, prk, "sk", nil, nsk)
}

// stdHPKE binds crypto/hpke.
type stdHPKE struct {
	kem    hpke.KEM
	kdf    hpke.KDF
	aead   hpke.AEAD
	x25519 bool
	// scalarSize is Nsk for the NIST curves, whose private keys are
	// big-endian scalars that may arrive without leading zero bytes.
	scalarSize int

	directOnce sync.Once
	dk         *dhkemHKDF // the key schedule written out (suite_hpkeinfo.go), or nil
}

func (h *stdHPKE) deriveKeyPair(ikm []byte) ([]byte, []byte, error) {
	if h.x25519 {
		sk, err := deriveXSecret(sha256.New, kemIDX25519, 32, ikm)
		if err != nil {
			return nil, nil, err
		}
		pub, err := x25519PublicKey(sk)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: derive X25519 key: %w", err)
		}
		return sk, pub, nil
	}
	k, err := h.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: derive HPKE key pair: %w", err)
	}
	priv, err := k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: serialize HPKE key: %w", err)
	}
	return priv, k.PublicKey().Bytes(), nil
}

func (h *stdHPKE) seal(pub, info, aad, plaintext []byte) ([]byte, []byte, error) {
	if h.x25519 {
		d := h.direct()
		return d.seal(d.keyScheduleContext(info), pub, aad, plaintext)
	}
	enc, sender, err := h.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	ct, err := sender.Seal(aad, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

func (h *stdHPKE) sender(pub, info []byte) ([]byte, *hpke.Sender, error) {
	pk, err := h.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	enc, sender, err := hpke.NewSender(pk, h.kdf, h.aead, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	return enc, sender, nil
}

func (h *stdHPKE) recipient(priv, enc, info []byte) (*hpke.Recipient, error) {
	if h.scalarSize > 0 && len(priv) > 0 {
		priv = leftPad(priv, h.scalarSize)
	}
	sk, err := h.kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key: %v", ErrInvalidKey, err)
	}
	r, err := hpke.NewRecipient(enc, sk, h.kdf, h.aead, info)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation: %v", ErrDecrypt, err)
	}
	return r, nil
}

func (h *stdHPKE) exportSender(pub, info []byte, exporterContext string, length int) ([]byte, []byte, error) {
	enc, sender, err := h.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	secret, err := sender.Export(exporterContext, length)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE export: %w", err)
	}
	return enc, secret, nil
}

func (h *stdHPKE) exportReceiver(priv, enc, info []byte, exporterContext string, length int) ([]byte, error) {
	r, err := h.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	secret, err := r.Export(exporterContext, length)
	if err != nil {
		return nil, fmt.Errorf("mls: HPKE export: %w", err)
	}
	return secret, nil
}

func (h *stdHPKE) open(priv, enc, info, aad, ct []byte) ([]byte, error) {
	if h.x25519 {
		d := h.direct()
		return d.openX25519(d.keyScheduleContext(info), priv, enc, aad, ct)
	}
	r, err := h.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	pt, err := r.Open(aad, ct)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// circlHPKE binds circl's HPKE for DHKEM(X448, HKDF-SHA512).
type circlHPKE struct {
	suite circlhpke.Suite
	kem   circlhpke.KEM
}

const x448Size = 56

func (h *circlHPKE) deriveKeyPair(ikm []byte) ([]byte, []byte, error) {
	sk, err := deriveXSecret(sha512.New, kemIDX448, x448Size, ikm)
	if err != nil {
		return nil, nil, err
	}
	k, err := h.kem.Scheme().UnmarshalBinaryPrivateKey(sk)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: derive X448 key: %w", err)
	}
	pub, err := k.Public().MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: serialize X448 key: %w", err)
	}
	return sk, pub, nil
}

func (h *circlHPKE) sender(pub, info []byte) ([]byte, circlhpke.Sealer, error) {
	pk, err := h.kem.Scheme().UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	sender, err := h.suite.NewSender(pk, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	enc, sealer, err := sender.Setup(randSource)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	return enc, sealer, nil
}

func (h *circlHPKE) recipient(priv, enc, info []byte) (circlhpke.Opener, error) {
	sk, err := h.kem.Scheme().UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key: %v", ErrInvalidKey, err)
	}
	r, err := h.suite.NewReceiver(sk, info)
	if err != nil {
		return nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	if len(enc) != h.kem.Scheme().CiphertextSize() {
		return nil, fmt.Errorf("%w: kem_output is %d bytes", ErrDecrypt, len(enc))
	}
	opener, err := r.Setup(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation: %v", ErrDecrypt, err)
	}
	return opener, nil
}

func (h *circlHPKE) exportSender(pub, info []byte, exporterContext string, length int) ([]byte, []byte, error) {
	if length < 0 || length > 0xffff {
		return nil, nil, fmt.Errorf("mls: HPKE export length %d out of range", length)
	}
	enc, sealer, err := h.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	return enc, sealer.Export([]byte(exporterContext), uint(length)), nil
}

func (h *circlHPKE) exportReceiver(priv, enc, info []byte, exporterContext string, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: HPKE export length %d out of range", length)
	}
	opener, err := h.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	return opener.Export([]byte(exporterContext), uint(length)), nil
}

func (h *circlHPKE) seal(pub, info, aad, plaintext []byte) ([]byte, []byte, error) {
	enc, sealer, err := h.sender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	ct, err := sealer.Seal(plaintext, aad)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

func (h *circlHPKE) open(priv, enc, info, aad, ct []byte) ([]byte, error) {
	opener, err := h.recipient(priv, enc, info)
	if err != nil {
		return nil, err
	}
	pt, err := opener.Open(ct, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
