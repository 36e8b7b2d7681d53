package devid

import (
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/internal/mls"
)

// This file is the identity-binding rule as an mls.IdentityProvider: the
// leaf's credential chains to user U and names this leaf's signature key.

// ErrUnsupportedCredential: a credential type the rule does not know.
var ErrUnsupportedCredential = errors.New("devid: unsupported credential type")

// ErrOtherUser: a leaf replaced by one of another user.
var ErrOtherUser = errors.New("devid: leaf replaced by another user's")

// Rule is the identity-binding rule. Its zero value uses time.Now.
type Rule struct {
	// Now is the clock certificates are judged by (nil: time.Now).
	Now func() time.Time
}

// User returns the user that credential cred speaks for with leaf
// signature key sigKey. A basic credential is the single-device form: its
// identity is the Ed25519 key that is both the user and the device. An
// x509 credential must pass Verify.
func (r Rule) User(cred *mls.Credential, sigKey []byte) (ed25519.PublicKey, error) {
	switch cred.Type {
	case mls.CredentialBasic:
		if len(cred.Identity) != ed25519.PublicKeySize || subtle.ConstantTimeCompare(cred.Identity, sigKey) != 1 {
			return nil, fmt.Errorf("%w: basic credential names %x, leaf key is %x", ErrWrongKey, truncate(cred.Identity), truncate(sigKey))
		}
		return ed25519.PublicKey(append([]byte{}, cred.Identity...)), nil
	case mls.CredentialX509:
		d, err := Verify(cred.Certificates, sigKey, r.now())
		if err != nil {
			return nil, err
		}
		return d.User, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrUnsupportedCredential, cred.Type)
}

func (r Rule) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// ValidateLeaf implements mls.IdentityProvider.
func (r Rule) ValidateLeaf(leaf *mls.LeafInfo) error {
	_, err := r.User(&leaf.Credential, leaf.SignatureKey)
	return err
}

// ValidSuccessor implements mls.IdentityProvider: a leaf may be replaced
// only by a leaf of the same user (a device renewing its certificate, or
// moving from the basic to the x509 form of the same identity).
func (r Rule) ValidSuccessor(prev mls.Member, next *mls.LeafInfo) error {
	was, err := r.User(&prev.Credential, prev.SignatureKey)
	if err != nil {
		return err
	}
	now, err := r.User(&next.Credential, next.SignatureKey)
	if err != nil {
		return err
	}
	if !was.Equal(now) {
		return fmt.Errorf("%w: leaf %d of %x replaced by one of %x", ErrOtherUser, prev.Leaf, []byte(was), []byte(now))
	}
	return nil
}

// Signer returns an MLS signer for a device: the x509 credential of chain
// (from User.IssueDevice) with the device's Ed25519 private key, whose
// leaves accept both basic and x509 members.
func Signer(chain [][]byte, device ed25519.PrivateKey) (*mls.Signer, error) {
	if len(device) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: device key has %d bytes", ErrInvalidKey, len(device))
	}
	certs := make([][]byte, len(chain))
	for i, c := range chain {
		certs[i] = append([]byte{}, c...)
	}
	return &mls.Signer{
		Credential:      mls.Credential{Type: mls.CredentialX509, Certificates: certs},
		SignaturePub:    append([]byte{}, device.Public().(ed25519.PublicKey)...),
		SignaturePriv:   device.Seed(), // RFC 8032 private key, as internal/mls keeps it
		CredentialTypes: []mls.CredentialType{mls.CredentialX509},
	}, nil
}
