package mls

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// Content signed on other goroutines by a ContentSigner reads at every
// other member as Protect's own does, in the order ProtectSigned takes it.
func TestProtectSignedReadsAsProtect(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a := sg.members[0]
	s, err := a.g.ContentSigner()
	if err != nil {
		t.Fatal(err)
	}
	if s.Epoch() != a.g.Epoch() || !bytes.Equal(s.EpochAuthenticator(), a.g.EpochAuthenticator()) || !s.Current(a.g) {
		t.Fatal("signer is not of the group's epoch")
	}
	const n = 8
	signed := make([]*SignedContent, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sc, err := s.SignApplication(fmt.Appendf(nil, "message %d", i), []byte("ad"))
			if err != nil {
				t.Error(err)
			}
			signed[i] = sc
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, sc := range signed {
		msg, err := a.g.ProtectSigned(sc)
		if err != nil {
			t.Fatalf("ProtectSigned %d: %v", i, err)
		}
		for _, to := range sg.members[1:] {
			r, err := to.g.ProcessMessage(msg)
			if err != nil {
				t.Fatalf("%s reading message %d: %v", to.name, i, err)
			}
			if r.Kind != KindApplication || string(r.Plaintext) != fmt.Sprintf("message %d", i) ||
				string(r.AuthenticatedData) != "ad" || r.Sender.Leaf != a.g.OwnLeaf() {
				t.Fatalf("%s read %q (ad %q) from leaf %d", to.name, r.Plaintext, r.AuthenticatedData, r.Sender.Leaf)
			}
		}
	}
	// The group moves on as after Protect: the next message reads too.
	sg.talk("after")
}

// Content signed for a state the group has left is refused, and the
// group is unchanged: after a commit, in another member's group, and in a
// state of the same epoch number that another commit made (a fork).
func TestProtectSignedRefusesAnotherState(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b := sg.members[0], sg.members[1]
	signer := func(c *scClient) *ContentSigner {
		s, err := c.g.ContentSigner()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sign := func(s *ContentSigner) *SignedContent {
		sc, err := s.SignApplication([]byte("hello"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	refused := func(what string, g *Group, sc *SignedContent) {
		t.Helper()
		before := mustState(t, g)
		g.MarkSaved()
		if _, err := g.ProtectSigned(sc); !errors.Is(err, ErrStaleSignedContent) {
			t.Fatalf("%s: ProtectSigned = %v, want ErrStaleSignedContent", what, err)
		}
		checkUnchanged(t, what, g, before)
		if g.Unsaved() != UnsavedNothing {
			// The caller signs again; it would save the whole state.
			t.Fatalf("%s: the refusal left the group marked %v", what, g.Unsaved())
		}
	}

	refused("another member's content", a.g, sign(signer(b)))
	refused("no content", a.g, nil)

	// A fork: a's own commit and b's commit both make epoch e+1.
	old := signer(a)
	oldContent := sign(old)
	forked, err := UnmarshalGroup(mustState(t, a.g))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forked.SelfUpdate(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := forked.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	fs, err := forked.ContentSigner()
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(b, mustCommit(t, b.g))
	if a.g.Epoch() != forked.Epoch() {
		t.Fatalf("epochs %d and %d", a.g.Epoch(), forked.Epoch())
	}
	if old.Current(a.g) || fs.Current(a.g) {
		t.Fatal("a signer of another state is current")
	}
	refused("content of the epoch before", a.g, oldContent)
	refused("content of a fork of the same epoch number", a.g, sign(fs))

	// The signer of the new state works; a wiped one signs nothing.
	s := signer(a)
	msg, err := a.g.ProtectSigned(sign(s))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := b.g.ProcessMessage(msg); err != nil || string(r.Plaintext) != "hello" {
		t.Fatalf("b read %v, %v", r, err)
	}
	s.Wipe()
	if _, err := s.SignApplication([]byte("x"), nil); err == nil {
		t.Fatal("a wiped signer signed")
	}
}

// A removed member gets no signer.
func TestContentSignerOfRemovedMember(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	victim := sg.members[2]
	s, err := victim.g.ContentSigner()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := s.SignApplication([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.remove(sg.members[0], victim)
	if _, err := victim.g.ContentSigner(); !errors.Is(err, ErrNotMember) {
		t.Fatalf("ContentSigner of a removed member = %v, want ErrNotMember", err)
	}
	if _, err := victim.g.ProtectSigned(sc); !errors.Is(err, ErrNotMember) {
		t.Fatalf("ProtectSigned of a removed member = %v, want ErrNotMember", err)
	}
}
