package mls

import (
	"errors"
	"testing"
)

// refuseNamed refuses leaves whose basic credential names one of names.
type refuseNamed []string

var errNamedRefused = errors.New("refused by name")

func (r refuseNamed) ValidateLeaf(l *LeafInfo) error {
	for _, n := range r {
		if string(l.Credential.Identity) == n {
			return errNamedRefused
		}
	}
	return nil
}

func (r refuseNamed) ValidSuccessor(Member, *LeafInfo) error { return nil }

// A PublicGroup with an IdentityProvider judges the leaves commits bring,
// as a member's policy does, and keeps the provider across commits;
// ValidateMembers applies it to the current tree.
func TestPublicGroupIdentityProvider(t *testing.T) {
	sg := scCreate(t, Config{PublicHandshake: true})
	a := sg.members[0]
	f := newFollower(t, a.g)
	f.pg.SetIdentityProvider(refuseNamed{"mallory"})
	if err := f.pg.ValidateMembers(); err != nil {
		t.Fatalf("ValidateMembers: %v", err)
	}
	kpm, _ := scKeyPackage(t, scNewClient(t, "mallory"))
	res, err := a.g.AddMembers([]*KeyPackage{kpm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.refused("add of a refused leaf", res.Message, ErrCredentialRefused)
	if _, err := f.pg.ApplyCommit(res.Message); !errors.Is(err, errNamedRefused) {
		t.Fatalf("the provider's error is not in the chain: %v", err)
	}
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	kpb, _ := scKeyPackage(t, scNewClient(t, "member-1"))
	res, err = a.g.AddMembers([]*KeyPackage{kpb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pg.ApplyCommit(res.Message); err != nil {
		t.Fatalf("add of an accepted leaf: %v", err)
	}
	if _, err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	// The provider survives the commit.
	res, err = a.g.AddMembers([]*KeyPackage{kpm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.refused("add of a refused leaf after a commit", res.Message, ErrCredentialRefused)
	f.pg.SetIdentityProvider(refuseNamed{"member-1"})
	if err := f.pg.ValidateMembers(); !errors.Is(err, ErrCredentialRefused) {
		t.Fatalf("ValidateMembers with a refused member: %v", err)
	}
	f.pg.SetIdentityProvider(nil)
	if err := f.pg.ValidateMembers(); err != nil {
		t.Fatalf("ValidateMembers without a provider: %v", err)
	}
}
