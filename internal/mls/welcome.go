package mls

import (
	"bytes"
	"fmt"
)

// This file is the Welcome of RFC 9420 §12.4.3.1: how a committer hands new
// members the secrets of the epoch it creates. The GroupInfo is encrypted once
// with a key derived from the joiner secret; the joiner secret (in a
// GroupSecrets) is HPKE-encrypted to each new member's KeyPackage init key.
//
// Here are the message and its cryptography: finding one's entry, opening
// GroupSecrets and GroupInfo, and building a Welcome. Validating the
// GroupInfo against a ratchet tree and setting up group state are the
// group's work.

// PathSecret carries the path secret of the lowest node a new member shares
// with the committer's direct path (RFC 9420 §12.4.3.1).
type PathSecret struct {
	PathSecret []byte
}

// GroupSecrets is what each new member decrypts from a Welcome
// (RFC 9420 §12.4.3.1). PathSecret is nil when absent.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret
	PSKs         []PreSharedKeyID
}

// append appends the TLS encoding of g.
func (g *GroupSecrets) append(b []byte) []byte {
	b = AppendOpaque(b, g.JoinerSecret)
	b = AppendOptional(b, g.PathSecret != nil, func(b []byte) []byte {
		return AppendOpaque(b, g.PathSecret.PathSecret)
	})
	return AppendVector(b, func(b []byte) []byte {
		for i := range g.PSKs {
			b = g.PSKs[i].append(b)
		}
		return b
	})
}

// Marshal returns the TLS encoding of g.
func (g *GroupSecrets) Marshal() []byte { return g.append(nil) }

// readGroupSecrets reads a GroupSecrets.
func (r *Reader) readGroupSecrets() GroupSecrets {
	g := GroupSecrets{JoinerSecret: r.Opaque(), PSKs: []PreSharedKeyID{}}
	r.Optional(func(r *Reader) {
		g.PathSecret = &PathSecret{PathSecret: r.Opaque()}
	})
	r.Vector(func(r *Reader) {
		g.PSKs = append(g.PSKs, r.readPreSharedKeyID())
	})
	return g
}

// ParseGroupSecrets decodes one GroupSecrets that fills b.
func ParseGroupSecrets(b []byte) (*GroupSecrets, error) {
	r := NewReader(b)
	g := r.readGroupSecrets()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing GroupSecrets: %w", err)
	}
	return &g, nil
}

// EncryptedGroupSecrets is one new member's entry in a Welcome: the ref of
// the KeyPackage it was encrypted to and the encrypted GroupSecrets.
type EncryptedGroupSecrets struct {
	NewMember             KeyPackageRef
	EncryptedGroupSecrets HPKECiphertext
}

// Welcome brings new members into a group (RFC 9420 §12.4.3.1).
type Welcome struct {
	CipherSuite        CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// append appends the TLS encoding of w.
func (w *Welcome) append(b []byte) []byte {
	b = AppendUint16(b, uint16(w.CipherSuite))
	b = AppendVector(b, func(b []byte) []byte {
		for i := range w.Secrets {
			b = AppendOpaque(b, w.Secrets[i].NewMember)
			b = w.Secrets[i].EncryptedGroupSecrets.append(b)
		}
		return b
	})
	return AppendOpaque(b, w.EncryptedGroupInfo)
}

// Marshal returns the TLS encoding of w.
func (w *Welcome) Marshal() []byte { return w.append(nil) }

// readWelcome reads a Welcome.
func (r *Reader) readWelcome() Welcome {
	w := Welcome{CipherSuite: CipherSuite(r.Uint16()), Secrets: []EncryptedGroupSecrets{}}
	r.Vector(func(r *Reader) {
		w.Secrets = append(w.Secrets, EncryptedGroupSecrets{
			NewMember:             r.Opaque(),
			EncryptedGroupSecrets: r.readHPKECiphertext(),
		})
	})
	w.EncryptedGroupInfo = r.Opaque()
	return w
}

// ParseWelcome decodes one Welcome that fills b (the bare struct, not an
// MLSMessage; see ParseMLSMessage for the framed form).
func ParseWelcome(b []byte) (*Welcome, error) {
	r := NewReader(b)
	w := r.readWelcome()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing Welcome: %w", err)
	}
	return &w, nil
}

// Find returns the entry for the KeyPackage named ref, or nil.
func (w *Welcome) Find(ref KeyPackageRef) *EncryptedGroupSecrets {
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			return &w.Secrets[i]
		}
	}
	return nil
}

// DecryptGroupSecrets finds the entry for kp (whose init private key is
// initPriv) and decrypts its GroupSecrets. A Welcome of another cipher suite
// than kp's, or with no entry for kp, matches ErrInvalidMessage; a failure to
// decrypt matches ErrDecrypt.
func (w *Welcome) DecryptGroupSecrets(s Suite, kp *KeyPackage, initPriv []byte) (*GroupSecrets, error) {
	if w.CipherSuite != s.ID() || kp.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: Welcome cipher suite %v, KeyPackage %v, suite %v",
			ErrInvalidMessage, w.CipherSuite, kp.CipherSuite, s.ID())
	}
	e := w.Find(kp.Ref(s))
	if e == nil {
		return nil, fmt.Errorf("%w: Welcome has no entry for this KeyPackage", ErrInvalidMessage)
	}
	pt, err := DecryptWithLabel(s, initPriv, "Welcome", w.EncryptedGroupInfo,
		e.EncryptedGroupSecrets.KEMOutput, e.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("decrypting GroupSecrets: %w", err)
	}
	defer clear(pt)
	gs, err := ParseGroupSecrets(pt)
	if err != nil {
		return nil, err
	}
	return gs, nil
}

// welcomeKeyNonceFromJoiner derives the GroupInfo key and nonce from the
// joiner secret and the PSK secret (nil: no PSKs, all zeros).
func welcomeKeyNonceFromJoiner(s Suite, joinerSecret, pskSecret []byte) (key, nonce []byte, err error) {
	if pskSecret == nil {
		pskSecret = make([]byte, s.HashSize())
	}
	member := s.Extract(joinerSecret, pskSecret)
	defer clear(member)
	welcomeSecret, err := DeriveSecret(s, member, "welcome")
	if err != nil {
		return nil, nil, err
	}
	defer clear(welcomeSecret)
	return WelcomeKeyNonce(s, welcomeSecret)
}

// DecryptGroupInfo decrypts and decodes the Welcome's GroupInfo with the
// joiner secret from GroupSecrets and the PSK secret of its PSKs (nil when
// there are none). It does not verify the GroupInfo: the caller checks its
// signature against the tree and its confirmation tag against the key
// schedule.
func (w *Welcome) DecryptGroupInfo(s Suite, joinerSecret, pskSecret []byte) (*GroupInfo, error) {
	key, nonce, err := welcomeKeyNonceFromJoiner(s, joinerSecret, pskSecret)
	if err != nil {
		return nil, fmt.Errorf("deriving welcome key: %w", err)
	}
	defer clear(key)
	defer clear(nonce)
	pt, err := s.Open(key, nonce, nil, w.EncryptedGroupInfo)
	if err != nil {
		return nil, fmt.Errorf("decrypting GroupInfo: %w", err)
	}
	gi, err := ParseGroupInfo(pt)
	if err != nil {
		return nil, err
	}
	return gi, nil
}

// WelcomeRecipient is one new member a Welcome is built for: its KeyPackage
// and the path secret the committer shares with it (nil for none).
type WelcomeRecipient struct {
	KeyPackage *KeyPackage
	PathSecret []byte
}

// NewWelcome builds a Welcome of gi (already signed) for recipients: the
// GroupInfo is encrypted under the key derived from joinerSecret and
// pskSecret (nil: no PSKs), and a GroupSecrets with joinerSecret, the
// recipient's path secret and psks is HPKE-encrypted to each recipient's init
// key, on several goroutines for many recipients (parallel.go); the Suite
// must be safe for concurrent use, as this package's suites are.
func NewWelcome(s Suite, gi *GroupInfo, joinerSecret, pskSecret []byte, psks []PreSharedKeyID, recipients []WelcomeRecipient) (*Welcome, error) {
	key, nonce, err := welcomeKeyNonceFromJoiner(s, joinerSecret, pskSecret)
	if err != nil {
		return nil, fmt.Errorf("deriving welcome key: %w", err)
	}
	defer clear(key)
	defer clear(nonce)
	egi, err := s.Seal(key, nonce, nil, gi.Marshal())
	if err != nil {
		return nil, fmt.Errorf("encrypting GroupInfo: %w", err)
	}
	for i, rc := range recipients {
		if rc.KeyPackage.CipherSuite != s.ID() {
			return nil, fmt.Errorf("%w: recipient %d KeyPackage has cipher suite %v, want %v",
				ErrInvalidKeyPackage, i, rc.KeyPackage.CipherSuite, s.ID())
		}
	}
	w := &Welcome{CipherSuite: s.ID(), EncryptedGroupInfo: egi, Secrets: make([]EncryptedGroupSecrets, len(recipients))}
	seal := encryptorWithLabel(s, "Welcome", egi)
	err = parallelSeals(len(recipients), func(i int) error {
		rc := &recipients[i]
		gs := GroupSecrets{JoinerSecret: joinerSecret, PSKs: psks}
		if rc.PathSecret != nil {
			gs.PathSecret = &PathSecret{PathSecret: rc.PathSecret}
		}
		pt := gs.Marshal()
		kemOutput, ct, err := seal(rc.KeyPackage.InitKey, pt)
		clear(pt)
		if err != nil {
			return fmt.Errorf("encrypting GroupSecrets for recipient %d: %w", i, err)
		}
		w.Secrets[i] = EncryptedGroupSecrets{
			NewMember:             rc.KeyPackage.Ref(s),
			EncryptedGroupSecrets: HPKECiphertext{KEMOutput: kemOutput, Ciphertext: ct},
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}
