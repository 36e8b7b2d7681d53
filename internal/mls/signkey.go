package mls

import "crypto/ed25519"

// This file keeps a Group's signature private key parsed. An Ed25519 key
// is stored as its RFC 8032 seed, and making the signing key from it costs
// a scalar multiplication, as much as a third of a signature: a Group makes
// it once, on its first signature, instead of for every message.

// signingKey is the parsed form of one encoded signature private key.
// priv is the encoding it was parsed from (shared with the Group, whose
// sigPriv it is); ed is the expanded Ed25519 key, nil for other schemes.
type signingKey struct {
	priv []byte
	ed   ed25519.PrivateKey
}

// signingKey returns g's parsed key, parsing it on first use and again if
// the encoded key changed.
func (g *Group) signingKey() *signingKey {
	if k := g.signKey; k != nil && sameSlice(k.priv, g.sigPriv) {
		return k
	}
	k := &signingKey{priv: g.sigPriv}
	if s, ok := g.suite.(*suite); ok {
		if _, isEd := s.sig.(ed25519Scheme); isEd && len(g.sigPriv) == ed25519.SeedSize {
			k.ed = ed25519.NewKeyFromSeed(g.sigPriv)
		}
	}
	g.signKey = k
	return k
}

// signFunc makes a SignWithLabel signature with a key it holds.
type signFunc func(label string, content []byte) ([]byte, error)

// signWithLabel is SignWithLabel with g's signature key.
func (g *Group) signWithLabel(label string, content []byte) ([]byte, error) {
	k := g.signingKey()
	if k.ed == nil {
		return SignWithLabel(g.suite, k.priv, label, content)
	}
	return ed25519.Sign(k.ed, signContent(label, content)), nil
}

// wipe zeroes the parsed key. The encoding is the Group's and is left
// alone.
func (k *signingKey) wipe() {
	if k != nil {
		clear(k.ed)
		k.ed = nil
	}
}
