package mls

// The key schedule of RFC 9420 §8. Each epoch starts from the previous
// epoch's init_secret, the commit_secret of the Commit that opened it, the
// combined psk_secret and the new GroupContext:
//
//	init_secret[n-1], commit_secret -> joiner_secret   (with GroupContext[n])
//	joiner_secret, psk_secret        -> welcome_secret, epoch_secret
//	epoch_secret                     -> the per-epoch secrets below
//
// A member who joins by Welcome learns joiner_secret directly and enters the
// schedule in the middle.

import (
	"fmt"
)

// EpochSecrets holds every secret derived for one epoch. InitSecret is the
// init_secret of the NEXT epoch. The fields are plain byte slices so that
// a group's state can be stored with Marshal and read back with
// ParseEpochSecrets.
type EpochSecrets struct {
	JoinerSecret       []byte
	WelcomeSecret      []byte
	EpochSecret        []byte
	InitSecret         []byte
	SenderDataSecret   []byte
	EncryptionSecret   []byte
	ExporterSecret     []byte
	EpochAuthenticator []byte
	ExternalSecret     []byte
	ConfirmationKey    []byte
	MembershipKey      []byte
	ResumptionPSK      []byte
}

// zeroIfNil returns v, or Nh zero bytes for a nil or empty v (RFC 9420 §8:
// an absent commit_secret or psk_secret is the all-zero vector).
func zeroIfNil(s Suite, v []byte) []byte {
	if len(v) == 0 {
		return make([]byte, s.HashSize())
	}
	return v
}

// DeriveJoinerSecret computes joiner_secret from the previous epoch's
// init_secret, the commit_secret (nil for none) and the serialized
// GroupContext of the new epoch.
func DeriveJoinerSecret(s Suite, initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	prk := s.Extract(initSecret, zeroIfNil(s, commitSecret))
	defer clear(prk)
	js, err := ExpandWithLabel(s, prk, "joiner", groupContext, s.HashSize())
	if err != nil {
		return nil, fmt.Errorf("mls: joiner_secret: %w", err)
	}
	return js, nil
}

// DeriveEpochSecrets runs the rest of the key schedule from joiner_secret,
// the psk_secret (nil for none) and the serialized GroupContext of the epoch.
func DeriveEpochSecrets(s Suite, joinerSecret, pskSecret, groupContext []byte) (*EpochSecrets, error) {
	prk := s.Extract(joinerSecret, zeroIfNil(s, pskSecret))
	defer clear(prk)
	e := &EpochSecrets{JoinerSecret: bytesClone(joinerSecret)}
	var err error
	if e.WelcomeSecret, err = DeriveSecret(s, prk, "welcome"); err != nil {
		return nil, fmt.Errorf("mls: welcome_secret: %w", err)
	}
	if e.EpochSecret, err = ExpandWithLabel(s, prk, "epoch", groupContext, s.HashSize()); err != nil {
		return nil, fmt.Errorf("mls: epoch_secret: %w", err)
	}
	for _, d := range []struct {
		out   *[]byte
		label string
	}{
		{&e.SenderDataSecret, "sender data"},
		{&e.EncryptionSecret, "encryption"},
		{&e.ExporterSecret, "exporter"},
		{&e.ExternalSecret, "external"},
		{&e.ConfirmationKey, "confirm"},
		{&e.MembershipKey, "membership"},
		{&e.ResumptionPSK, "resumption"},
		{&e.EpochAuthenticator, "authentication"},
		{&e.InitSecret, "init"},
	} {
		if *d.out, err = DeriveSecret(s, e.EpochSecret, d.label); err != nil {
			return nil, fmt.Errorf("mls: %s secret: %w", d.label, err)
		}
	}
	return e, nil
}

func bytesClone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// WelcomeKeyNonce derives the AEAD key and nonce that protect the GroupInfo
// in a Welcome (RFC 9420 §12.4.3.1).
func WelcomeKeyNonce(s Suite, welcomeSecret []byte) (key, nonce []byte, err error) {
	if key, err = ExpandWithLabel(s, welcomeSecret, "key", nil, s.AEADKeySize()); err != nil {
		return nil, nil, fmt.Errorf("mls: welcome key: %w", err)
	}
	if nonce, err = ExpandWithLabel(s, welcomeSecret, "nonce", nil, s.AEADNonceSize()); err != nil {
		return nil, nil, fmt.Errorf("mls: welcome nonce: %w", err)
	}
	return key, nonce, nil
}

// Export is the MLS-Exporter of RFC 9420 §8.5: a secret of the given length
// for an application label and context, bound to the epoch.
func Export(s Suite, exporterSecret []byte, label string, context []byte, length int) ([]byte, error) {
	derived, err := DeriveSecret(s, exporterSecret, label)
	if err != nil {
		return nil, fmt.Errorf("mls: exporter: %w", err)
	}
	defer clear(derived)
	out, err := ExpandWithLabel(s, derived, "exported", s.Hash(context), length)
	if err != nil {
		return nil, fmt.Errorf("mls: exporter: %w", err)
	}
	return out, nil
}

// ExternalKeyPair derives the HPKE key pair of external commits from the
// epoch's external_secret (RFC 9420 §8.3); its public half is the
// external_pub GroupInfo extension.
func ExternalKeyPair(s Suite, externalSecret []byte) (priv, pub []byte, err error) {
	priv, pub, err = s.DeriveKeyPair(externalSecret)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external key pair: %w", err)
	}
	return priv, pub, nil
}

func (e *EpochSecrets) fields() []*[]byte {
	return []*[]byte{
		&e.JoinerSecret, &e.WelcomeSecret, &e.EpochSecret, &e.InitSecret,
		&e.SenderDataSecret, &e.EncryptionSecret, &e.ExporterSecret,
		&e.EpochAuthenticator, &e.ExternalSecret, &e.ConfirmationKey,
		&e.MembershipKey, &e.ResumptionPSK,
	}
}

// Marshal serializes the secrets (each as opaque<V>, in field order) for
// storage. The output is secret material.
func (e *EpochSecrets) Marshal() []byte {
	var b []byte
	for _, f := range e.fields() {
		b = AppendOpaque(b, *f)
	}
	return b
}

// ParseEpochSecrets reads what Marshal wrote. Errors match ErrDecode.
func ParseEpochSecrets(b []byte) (*EpochSecrets, error) {
	e := &EpochSecrets{}
	r := NewReader(b)
	for _, f := range e.fields() {
		*f = r.Opaque()
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("mls: EpochSecrets: %w", err)
	}
	return e, nil
}

// Clear overwrites every secret with zeros and drops it. Call it when the
// epoch's secrets are no longer needed.
func (e *EpochSecrets) Clear() {
	for _, f := range e.fields() {
		clear(*f)
		*f = nil
	}
}
