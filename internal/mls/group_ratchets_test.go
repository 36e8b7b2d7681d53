package mls

import (
	"bytes"
	"errors"
	"testing"
)

// ratchetStore keeps a group as an application that saves only what
// changed would: the whole state when Unsaved says so, otherwise the
// ratchets beside the state last saved.
type ratchetStore struct {
	state, ratchets []byte
	wholes, small   int
}

// save stores what changed in g and reports it.
func (s *ratchetStore) save(t *testing.T, g *Group) Unsaved {
	t.Helper()
	u := g.Unsaved()
	switch u {
	case UnsavedState:
		s.state, s.ratchets = mustState(t, g), nil
		s.wholes++
	case UnsavedRatchets:
		s.ratchets = g.AppendRatchets(nil)
		s.small++
	}
	g.MarkSaved()
	return u
}

// load decodes what was saved.
func (s *ratchetStore) load(t *testing.T) *Group {
	t.Helper()
	g, err := UnmarshalGroup(s.state)
	if err != nil {
		t.Fatal(err)
	}
	if s.ratchets != nil {
		if err := g.LoadRatchets(s.ratchets); err != nil {
			t.Fatal(err)
		}
	}
	if u := g.Unsaved(); u != UnsavedNothing {
		t.Fatalf("a group just loaded has %v unsaved", u)
	}
	return g
}

// ratchetRig saves every member of sg after each step, checks that what
// was saved loads into exactly the live state, and goes on with the loaded
// groups: a change that Unsaved failed to report would be lost there, and
// the group would stop agreeing.
type ratchetRig struct {
	t      *testing.T
	sg     *scGroup
	stores map[*scClient]*ratchetStore
}

func newRatchetRig(t *testing.T, sg *scGroup) *ratchetRig {
	r := &ratchetRig{t: t, sg: sg, stores: map[*scClient]*ratchetStore{}}
	r.step("start", nil)
	return r
}

// step saves and reloads every member; want, when not nil, is what each
// named member must have had unsaved.
func (r *ratchetRig) step(what string, want map[*scClient]Unsaved) {
	r.t.Helper()
	for _, m := range r.sg.members {
		s := r.stores[m]
		if s == nil {
			s = &ratchetStore{}
			r.stores[m] = s
		}
		live := mustState(r.t, m.g)
		u := s.save(r.t, m.g)
		if w, ok := want[m]; ok && u != w {
			r.t.Fatalf("%s: %s left %v unsaved, want %v", what, m.name, u, w)
		}
		loaded := s.load(r.t)
		if got := mustState(r.t, loaded); !bytes.Equal(got, live) {
			r.t.Fatalf("%s: %s: the saved state (%v) loads into another state than the live one", what, m.name, u)
		}
		loaded.SetPolicy(m.g.Policy())
		m.g = loaded
	}
}

func TestSaveRatchetsOnly(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	r := newRatchetRig(t, sg)
	const (
		none     = UnsavedNothing
		ratchets = UnsavedRatchets
		whole    = UnsavedState
	)
	read := func(to *scClient, msg []byte) {
		t.Helper()
		if rec, err := to.g.ProcessMessage(msg); err != nil || rec.Kind != KindApplication {
			t.Fatalf("%s: %v %v", to.name, rec, err)
		}
	}
	protect := func(from *scClient, text string) []byte {
		t.Helper()
		msg, err := from.g.Protect([]byte(text), nil)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}

	m1 := protect(a, "one")
	r.step("protect", map[*scClient]Unsaved{a: ratchets, b: none, c: none})
	read(b, m1)
	read(c, m1)
	r.step("read", map[*scClient]Unsaved{a: none, b: ratchets, c: ratchets})

	// Out of order: the kept keys of the skipped generation are ratchets.
	m2, m3 := protect(a, "two"), protect(a, "three")
	read(b, m3)
	r.step("read ahead", map[*scClient]Unsaved{a: ratchets, b: ratchets})
	read(b, m2)
	read(c, m2)
	read(c, m3)
	r.step("read behind", map[*scClient]Unsaved{b: ratchets, c: ratchets})

	// A replay fails and is saved whole (a failed operation claims
	// nothing), as is a getter's nothing.
	if _, err := b.g.ProcessMessage(m2); err == nil {
		t.Fatal("replay read")
	}
	_ = c.g.Members()
	r.step("replay", map[*scClient]Unsaved{b: whole, c: none})

	// A late message of the last epoch, read after the commit.
	late := protect(c, "late")
	prop, err := b.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	r.step("propose", map[*scClient]Unsaved{b: whole, c: ratchets})
	for _, m := range []*scClient{a, c} {
		if rec, err := m.g.ProcessMessage(prop); err != nil || rec.Kind != KindProposal {
			t.Fatalf("%s: proposal: %v %v", m.name, rec, err)
		}
	}
	r.step("proposal", map[*scClient]Unsaved{a: whole, c: whole})
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.step("commit", map[*scClient]Unsaved{a: whole})
	sg.commitFrom(a, res)
	r.step("merge", map[*scClient]Unsaved{a: whole, b: whole, c: whole})
	oldRatchets := r.stores[a].ratchets // nil: saved whole
	read(b, late)
	r.step("late", map[*scClient]Unsaved{b: ratchets})
	sg.agree()
	sg.talk("after")
	r.step("talk", nil)

	// Ratchets of another epoch, or broken ones, are refused, and the
	// group is unchanged.
	stale := b.g.AppendRatchets(nil)
	sg.commitFrom(c, mustCommit(t, c.g))
	r.step("second commit", nil)
	for name, bad := range map[string][]byte{
		"other epoch": stale,
		"truncated":   stale[:len(stale)/2],
		"empty":       nil,
		"trailing":    append(b.g.AppendRatchets(nil), 0),
	} {
		before := mustState(t, b.g)
		if err := b.g.LoadRatchets(bad); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: LoadRatchets gave %v, want ErrDecode", name, err)
		}
		checkUnchanged(t, name, b.g, before)
	}
	if oldRatchets != nil {
		t.Fatal("a commit left ratchets beside the whole state")
	}
	sg.agree()
	sg.talk("end")
	if s := r.stores[b]; s.small == 0 || s.wholes == 0 {
		t.Fatalf("b saved %d wholes and %d ratchets", s.wholes, s.small)
	}
}

// A group's ratchets do not grow with the group: one sender's message in
// a group of 64 saves a few hundred bytes, not the tree.
func TestRatchetsSmall(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 63, true)
	a := sg.members[0]
	if n := a.g.MemberCount(); n != 64 || n != len(a.g.Members()) {
		t.Fatalf("MemberCount %d, Members %d", n, len(a.g.Members()))
	}
	if _, err := a.g.Protect([]byte("hi"), nil); err != nil {
		t.Fatal(err)
	}
	state, ratchets := mustState(t, a.g), a.g.AppendRatchets(nil)
	if len(ratchets) > 1024 || len(ratchets)*20 > len(state) {
		t.Fatalf("ratchets %d bytes beside a state of %d", len(ratchets), len(state))
	}
}

func mustCommit(t *testing.T, g *Group) *CommitResult {
	t.Helper()
	res, err := g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// FuzzLoadRatchets: hostile ratchets fail with ErrDecode and leave the
// group unchanged, or load into a state that saves and loads again.
func FuzzLoadRatchets(f *testing.F) {
	state, msgs := fuzzGroupSeeds(f)
	g, err := UnmarshalGroup(state)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(g.AppendRatchets(nil))
	for _, m := range msgs[:4] { // the application messages move b's ratchets
		if _, err := g.ProcessMessage(m); err == nil {
			f.Add(g.AppendRatchets(nil))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalGroup(state)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.LoadRatchets(b); err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v does not match ErrDecode", err)
			}
			checkUnchanged(t, "refused ratchets", g, state)
			return
		}
		again, err := UnmarshalGroup(mustState(t, g))
		if err != nil {
			t.Fatalf("loaded ratchets give a state that does not decode: %v", err)
		}
		if !bytes.Equal(again.AppendRatchets(nil), g.AppendRatchets(nil)) {
			t.Fatal("loaded ratchets do not survive a save")
		}
	})
}
