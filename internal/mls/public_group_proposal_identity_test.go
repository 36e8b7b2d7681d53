package mls

import (
	"bytes"
	"errors"
	"testing"
)

// refuseOrigin refuses every leaf of one origin.
type refuseOrigin LeafOrigin

var errOriginRefused = errors.New("refused by origin")

func (r refuseOrigin) ValidateLeaf(l *LeafInfo) error {
	if l.Origin == LeafOrigin(r) {
		return errOriginRefused
	}
	return nil
}

func (r refuseOrigin) ValidSuccessor(Member, *LeafInfo) error { return nil }

// A PublicGroup judges the leaf of an Add or an Update proposal when the
// proposal arrives, as a member does, not only when a commit covers it: a
// refused proposal is not kept and leaves the view as it was.
func TestPublicGroupIdentityProviderProposals(t *testing.T) {
	sg := scCreate(t, Config{PublicHandshake: true})
	a := sg.members[0]
	b := sg.add(a, 1, false)[0]
	f := newFollower(t, a.g)
	f.pg.SetIdentityProvider(refuseNamed{"mallory"})
	b.g.SetPolicy(Policy{Identity: refuseNamed{"mallory"}})

	refused := func(what string, msg []byte, want error) {
		t.Helper()
		before, _ := f.pg.MarshalBinary()
		if _, err := f.pg.ProcessProposal(msg); !errors.Is(err, ErrCredentialRefused) || !errors.Is(err, want) {
			t.Errorf("%s: ProcessProposal = %v, want %v and %v", what, err, ErrCredentialRefused, want)
		}
		if after, _ := f.pg.MarshalBinary(); !bytes.Equal(before, after) {
			t.Errorf("%s: a refused proposal changed the view", what)
		}
	}

	kpm, _ := scKeyPackage(t, scNewClient(t, "mallory"))
	p, err := a.g.ProposeAdd(kpm)
	if err != nil {
		t.Fatal(err)
	}
	refused("Add proposal of a refused leaf", p, errNamedRefused)
	if _, err := b.g.ProcessMessage(p); !errors.Is(err, ErrCredentialRefused) {
		t.Errorf("member: Add proposal of a refused leaf: %v", err)
	}

	kpc, _ := scKeyPackage(t, scNewClient(t, "carol"))
	if p, err = a.g.ProposeAdd(kpc); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pg.ProcessProposal(p); err != nil {
		t.Fatalf("Add proposal of an accepted leaf: %v", err)
	}

	// Update: the sender's new leaf, refused by its origin.
	f.pg.SetIdentityProvider(refuseOrigin(LeafFromUpdate))
	if p, err = b.g.ProposeUpdate(); err != nil {
		t.Fatal(err)
	}
	refused("Update proposal of a refused leaf", p, errOriginRefused)
	f.pg.SetIdentityProvider(refuseOrigin(LeafFromCommit))
	if _, err := f.pg.ProcessProposal(p); err != nil {
		t.Fatalf("Update proposal of an accepted leaf: %v", err)
	}
}
