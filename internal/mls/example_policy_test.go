package mls_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/internal/mls"
)

// contacts binds each basic credential identity to one signature key.
type contacts map[string][]byte

func (c contacts) ValidateLeaf(l *mls.LeafInfo) error {
	if k, ok := c[string(l.Credential.Identity)]; !ok || !bytes.Equal(k, l.SignatureKey) {
		return errors.New("unknown identity or key")
	}
	return nil
}

func (c contacts) ValidSuccessor(prev mls.Member, next *mls.LeafInfo) error {
	if !bytes.Equal(prev.SignatureKey, next.SignatureKey) {
		return errors.New("not the same client")
	}
	return nil
}

// A group whose members must be known contacts: a KeyPackage that names
// bob under another key is refused, and the group stays as it was.
func ExamplePolicy() {
	const cs = mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	alice, _ := mls.NewSigner(cs, []byte("alice"))
	bob, _ := mls.NewSigner(cs, []byte("bob"))
	mallory, _ := mls.NewSigner(cs, []byte("bob")) // claims to be bob
	known := contacts{"alice": alice.SignaturePub, "bob": bob.SignaturePub}

	g, _ := mls.CreateGroup(cs, nil, alice, &mls.CreateOptions{Policy: mls.Policy{Identity: known}})
	fake, _, _ := mls.GenerateKeyPackage(cs, mallory, nil)
	_, err := g.AddMembers([]*mls.KeyPackage{fake}, nil)
	fmt.Println(errors.Is(err, mls.ErrCredentialRefused))

	genuine, _, _ := mls.GenerateKeyPackage(cs, bob, nil)
	res, err := g.AddMembers([]*mls.KeyPackage{genuine}, nil)
	fmt.Println(err == nil, len(res.Added))
	// Output:
	// true
	// true 1
}
