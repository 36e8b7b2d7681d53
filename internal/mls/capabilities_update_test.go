package mls

import (
	"errors"
	"slices"
	"testing"
)

// TestUpdateTakesNewCredentialTypes: members of a group whose leaves
// support only the basic credential type cannot take an X.509 member
// (RFC 9420 §7.2, §12.1.1) until each has renewed its leaf with the types
// its client supports now: one by a commit with an UpdatePath, one by an
// Update proposal another member commits. A leaf cannot drop a type in use.
func TestUpdateTakesNewCredentialTypes(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	x := scNewClient(t, "x")
	kx, _ := scKeyPackage(t, x)
	kx = resigned(t, x, kx, func(k *KeyPackage) { x509Leaf(&k.LeafNode) })

	unchangedBy(t, a.g, ErrInvalidLeafNode, func() error {
		_, err := a.g.AddMembers([]*KeyPackage{kx}, nil)
		return err
	})

	x509 := []CredentialType{CredentialX509}
	res, err := a.g.SelfUpdate(&CommitOptions{CredentialTypes: x509})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message == nil {
		t.Fatal("no commit")
	}
	sg.commitFrom(a, res)
	for _, m := range sg.members {
		if got, _ := m.g.CredentialTypesOf(a.g.OwnLeaf()); !slices.Equal(got, []CredentialType{CredentialBasic, CredentialX509}) {
			t.Fatalf("%s sees a's credential types %v", m.name, got)
		}
	}
	// b alone still lacks X.509.
	unchangedBy(t, a.g, ErrInvalidLeafNode, func() error {
		_, err := a.g.AddMembers([]*KeyPackage{kx}, nil)
		return err
	})

	prop, err := b.g.ProposeUpdateCredentialTypes(x509)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.ProcessMessage(prop); err != nil {
		t.Fatalf("a processing b's update: %v", err)
	}
	res, err = a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	sg.agree()

	res, err = a.g.AddMembers([]*KeyPackage{kx}, nil)
	if err != nil {
		t.Fatalf("adding the X.509 member after both updates: %v", err)
	}
	sg.commitFrom(a, res)

	// With X.509 in use, neither way of updating may drop it.
	if _, err := b.g.SelfUpdate(&CommitOptions{CredentialTypes: []CredentialType{}}); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("path leaf dropping X.509 in use: %v", err)
	}
	if _, err := b.g.ProposeUpdateCredentialTypes(nil); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("update dropping X.509 in use: %v", err)
	}
}

// TestUpdateKeepsRequiredCredentialTypes: a leaf cannot drop a credential
// type the group requires (required_capabilities), by either way of
// updating, and the group is left as it was.
func TestUpdateKeepsRequiredCredentialTypes(t *testing.T) {
	a := scNewClient(t, "member-0")
	a.signer.CredentialTypes = []CredentialType{CredentialX509}
	g, err := CreateGroup(scSuite, nil, a.signer, &CreateOptions{
		Extensions: []Extension{RequiredCapabilitiesExtension(nil, nil, []CredentialType{CredentialX509})},
	})
	if err != nil {
		t.Fatal(err)
	}
	unchangedBy(t, g, ErrInvalidLeafNode, func() error {
		_, err := g.SelfUpdate(&CommitOptions{CredentialTypes: []CredentialType{}})
		return err
	})
	unchangedBy(t, g, ErrInvalidLeafNode, func() error {
		_, err := g.ProposeUpdateCredentialTypes(nil)
		return err
	})
	if _, err := g.SelfUpdate(&CommitOptions{CredentialTypes: a.signer.CredentialTypes}); err != nil {
		t.Fatalf("update keeping the required type: %v", err)
	}
}
