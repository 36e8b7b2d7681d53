package mls

import (
	"bytes"
	"errors"
	"testing"
)

// mustState returns g's stored form, to check that a refused operation
// left g unchanged.
func mustState(t *testing.T, g *Group) []byte {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkUnchanged(t *testing.T, what string, g *Group, before []byte) {
	t.Helper()
	if !bytes.Equal(before, mustState(t, g)) {
		t.Fatalf("%s changed the group state", what)
	}
}

// reinitKeyPackage makes a KeyPackage in suite cs for c's identity (a new
// signature key of that suite).
func reinitKeyPackage(t *testing.T, c *scClient, cs CipherSuite) (*KeyPackage, *KeyPackagePrivate) {
	t.Helper()
	signer, err := NewSigner(cs, c.signer.Credential.Identity)
	if err != nil {
		t.Fatal(err)
	}
	kp, priv, err := GenerateKeyPackage(cs, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp, priv
}

// reinitThree makes a group of three whose member b proposes a ReInit to
// suite 2 with new id and extensions and a commits it; every member
// follows.
func reinitThree(t *testing.T) (*scGroup, *scClient, *scClient, *scClient, *ReInitProposal) {
	t.Helper()
	sg, a, b, c := scThree(t, Config{})
	want := &ReInitProposal{GroupID: []byte("the new group"), Version: MLS10, CipherSuite: MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
		Extensions: []Extension{RequiredCapabilitiesExtension(nil, nil, nil)}}
	msg, err := b.g.ProposeReInit(want.GroupID, want.CipherSuite, want.Extensions)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{a, c} {
		if _, err := m.g.ProcessMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	sg.agree()
	return sg, a, b, c, want
}

func TestReInit(t *testing.T) {
	sg, a, b, c, want := reinitThree(t)
	cs := want.CipherSuite

	// The old group is closed to everything of its last epoch.
	for _, m := range sg.members {
		if m.g.Active() {
			t.Fatalf("%s still active", m.name)
		}
		got, ok := m.g.ReInit()
		if !ok || !bytes.Equal(got.GroupID, want.GroupID) || got.CipherSuite != cs {
			t.Fatalf("%s: ReInit() = %+v, %v", m.name, got, ok)
		}
		before := mustState(t, m.g)
		if _, err := m.g.Protect([]byte("x"), nil); !errors.Is(err, ErrReInitialized) || !errors.Is(err, ErrNotMember) {
			t.Fatalf("%s Protect: %v", m.name, err)
		}
		if _, err := m.g.Commit(nil); !errors.Is(err, ErrReInitialized) {
			t.Fatalf("%s Commit: %v", m.name, err)
		}
		if _, err := m.g.ProposeUpdate(); !errors.Is(err, ErrReInitialized) {
			t.Fatalf("%s ProposeUpdate: %v", m.name, err)
		}
		if _, _, err := m.g.CreateBranch(nil, nil, nil, nil, nil); !errors.Is(err, ErrReInitialized) {
			t.Fatalf("%s CreateBranch: %v", m.name, err)
		}
		checkUnchanged(t, m.name+" refused sends", m.g, before)
	}
	// An application message of the last epoch (sent by a client that
	// ignored the ReInit) is refused.
	rogue := c.g.clone()
	rogue.reinit = nil
	appMsg, err := rogue.Protect([]byte("after the reinit"), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := mustState(t, b.g)
	if _, err := b.g.ProcessMessage(appMsg); !errors.Is(err, ErrReInitialized) {
		t.Fatalf("application message in a closed group: %v", err)
	}
	checkUnchanged(t, "refused application message", b.g, before)

	kpA, privA := reinitKeyPackage(t, a, cs)
	kpB, privB := reinitKeyPackage(t, b, cs)
	cSigner, err := NewSigner(cs, c.signer.Credential.Identity)
	if err != nil {
		t.Fatal(err)
	}

	// The creator must bring every member, in the new suite.
	before = mustState(t, c.g)
	if _, _, err := c.g.CreateReInitGroup(cSigner, []*KeyPackage{kpA}, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("reinit without a member: %v", err)
	}
	oldKP, _ := scKeyPackage(t, b)
	if _, _, err := c.g.CreateReInitGroup(cSigner, []*KeyPackage{kpA, oldKP}, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("reinit with a KeyPackage of the old suite: %v", err)
	}
	if _, _, err := c.g.CreateReInitGroup(cSigner, []*KeyPackage{kpA, kpA}, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("reinit with a member twice: %v", err)
	}
	checkUnchanged(t, "refused CreateReInitGroup", c.g, before)

	ng, res, err := c.g.CreateReInitGroup(cSigner, []*KeyPackage{kpA, kpB}, &ResumeOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	checkUnchanged(t, "CreateReInitGroup", c.g, before)
	gc := ng.GroupContext()
	if ng.Epoch() != 1 || !bytes.Equal(gc.GroupID, want.GroupID) || gc.CipherSuite != cs || len(ng.Members()) != 3 {
		t.Fatalf("new group: epoch %d id %q suite %v, %d members", ng.Epoch(), gc.GroupID, gc.CipherSuite, len(ng.Members()))
	}

	// A plain join does not know the reinit PSK.
	if _, err := JoinFromWelcome(res.Welcome, privA, nil); !errors.Is(err, ErrUnknownPSK) {
		t.Fatalf("JoinFromWelcome of a reinit Welcome: %v", err)
	}
	// A branch join refuses a reinit PSK.
	other, _, _, _ := scThree(t, Config{})
	if _, err := other.members[0].g.JoinBranch(res.Welcome, privA, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("JoinBranch of a reinit Welcome: %v", err)
	}
	// Only a closed group can follow a ReInit.
	if _, err := other.members[0].g.JoinReInit(res.Welcome, privA, nil); !errors.Is(err, ErrNotReInitialized) {
		t.Fatalf("JoinReInit from an open group: %v", err)
	}

	joined := map[string]*Group{}
	for _, j := range []struct {
		c    *scClient
		priv *KeyPackagePrivate
	}{{a, privA}, {b, privB}} {
		before := mustState(t, j.c.g)
		g, err := j.c.g.JoinReInit(res.Welcome, j.priv, nil)
		if err != nil {
			t.Fatalf("%s JoinReInit: %v", j.c.name, err)
		}
		checkUnchanged(t, "JoinReInit", j.c.g, before)
		if !bytes.Equal(g.EpochAuthenticator(), ng.EpochAuthenticator()) {
			t.Fatalf("%s disagrees on the new group's epoch authenticator", j.c.name)
		}
		joined[j.c.name] = g
	}
	// The new group works.
	ct, err := joined[a.name].Protect([]byte("hello again"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ng.ProcessMessage(ct)
	if err != nil || string(rec.Plaintext) != "hello again" {
		t.Fatalf("new group message: %v %q", err, rec.Plaintext)
	}
}

func TestReInitJoinRefusesMismatches(t *testing.T) {
	_, a, b, c, want := reinitThree(t)
	cs := want.CipherSuite
	kpA, privA := reinitKeyPackage(t, a, cs)
	kpB, _ := reinitKeyPackage(t, b, cs)
	cSigner, err := NewSigner(cs, c.signer.Credential.Identity)
	if err != nil {
		t.Fatal(err)
	}
	kps := []*KeyPackage{kpA, kpB}
	cases := []struct {
		name  string
		build func() (*Group, *CommitResult, error)
	}{
		{"group id", func() (*Group, *CommitResult, error) {
			return c.g.createResumed(ResumptionPSKReInit, cs, []byte("another id"), want.Extensions, cSigner, kps, nil)
		}},
		{"extensions", func() (*Group, *CommitResult, error) {
			return c.g.createResumed(ResumptionPSKReInit, cs, want.GroupID, nil, cSigner, kps, nil)
		}},
		{"usage", func() (*Group, *CommitResult, error) {
			return c.g.createResumed(ResumptionPSKBranch, cs, want.GroupID, want.Extensions, cSigner, kps, nil)
		}},
		{"epoch", func() (*Group, *CommitResult, error) {
			old := c.g.clone()
			old.ctx.Epoch--
			old.keys.resumptionPSK = c.g.resumption[old.ctx.Epoch]
			return old.createResumed(ResumptionPSKReInit, cs, want.GroupID, want.Extensions, cSigner, kps, nil)
		}},
		{"members", func() (*Group, *CommitResult, error) {
			outsider := &scClient{signer: &Signer{Credential: NewBasicCredential([]byte("outsider"))}}
			kpO, _ := reinitKeyPackage(t, outsider, cs)
			return c.g.createResumed(ResumptionPSKReInit, cs, want.GroupID, want.Extensions, cSigner, []*KeyPackage{kpA, kpO}, nil)
		}},
	}
	before := mustState(t, a.g)
	for _, tc := range cases {
		_, res, err := tc.build()
		if err != nil {
			t.Fatalf("%s: building: %v", tc.name, err)
		}
		if _, err := a.g.JoinReInit(res.Welcome, privA, nil); !errors.Is(err, ErrResumptionMismatch) {
			t.Fatalf("%s mismatch: JoinReInit gave %v", tc.name, err)
		}
		checkUnchanged(t, tc.name+" refused", a.g, before)
	}
}

func TestReInitCommitMustBeAlone(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	reinit := Proposal{Type: ProposalReInit, ReInit: &ReInitProposal{GroupID: []byte("x"), Version: MLS10, CipherSuite: scSuite, Extensions: []Extension{}}}
	remove := Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: c.g.OwnLeaf()}}
	before := mustState(t, a.g)
	if _, err := a.g.Commit(&CommitOptions{Proposals: []Proposal{reinit, remove}}); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("ReInit with a Remove by value: %v", err)
	}
	checkUnchanged(t, "refused commit", a.g, before)

	// A receiver refuses such a commit too.
	forged := forgeCommit(t, a.g, &Commit{Proposals: []ProposalOrRef{
		{Type: ProposalOrRefProposal, Proposal: &reinit}, {Type: ProposalOrRefProposal, Proposal: &remove},
	}})
	before = mustState(t, b.g)
	if _, err := b.g.ProcessMessage(forged); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("received ReInit commit with a Remove: %v", err)
	}
	checkUnchanged(t, "refused received commit", b.g, before)

	// A ReInit received by reference is left out of a commit with other
	// proposals: the commit goes through and the group stays open.
	msg, err := b.g.ProposeReInit([]byte("x"), scSuite, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{a, c} {
		if _, err := m.g.ProcessMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	res, err := a.g.Commit(&CommitOptions{Proposals: []Proposal{remove}})
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	for _, m := range []*scClient{a, b} {
		if !m.g.Active() {
			t.Fatalf("%s closed by a commit that left the ReInit out", m.name)
		}
	}
}

func TestBranch(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	kpB, privB := scKeyPackage(t, b)
	exts := []Extension{{Type: scNameExt, Data: []byte("subgroup")}}

	// Only members of the group go into a branch, each once.
	outsider := scNewClient(t, "outsider")
	kpO, privO := scKeyPackage(t, outsider)
	before := mustState(t, a.g)
	if _, _, err := a.g.CreateBranch(nil, exts, nil, []*KeyPackage{kpB, kpO}, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("branch with an outsider: %v", err)
	}
	if _, _, err := a.g.CreateBranch(nil, exts, nil, []*KeyPackage{kpB, kpB}, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("branch with a member twice: %v", err)
	}
	other, _ := reinitKeyPackage(t, b, MLS_128_DHKEMP256_AES128GCM_SHA256_P256)
	if _, _, err := a.g.CreateBranch(nil, exts, nil, []*KeyPackage{other}, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("branch with a KeyPackage of another suite: %v", err)
	}
	checkUnchanged(t, "refused CreateBranch", a.g, before)

	ng, res, err := a.g.CreateBranch([]byte("branch"), exts, nil, []*KeyPackage{kpB}, &ResumeOptions{OmitRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	checkUnchanged(t, "CreateBranch", a.g, before)
	if ng.Epoch() != 1 || len(ng.Members()) != 2 || string(ng.GroupID()) != "branch" {
		t.Fatalf("branch: epoch %d, %d members", ng.Epoch(), len(ng.Members()))
	}
	opts := &JoinOptions{RatchetTree: ng.RatchetTree()}
	// c is no member of the branch; a closed group cannot join it either.
	_, privC := scKeyPackage(t, c)
	if _, err := c.g.JoinBranch(res.Welcome, privC, opts); !errors.Is(err, ErrNoMatchingKeyPackage) {
		t.Fatalf("JoinBranch with another's KeyPackage: %v", err)
	}
	if _, err := b.g.JoinReInit(res.Welcome, privB, opts); !errors.Is(err, ErrNotReInitialized) {
		t.Fatalf("JoinReInit of a branch: %v", err)
	}
	before = mustState(t, b.g)
	bg, err := b.g.JoinBranch(res.Welcome, privB, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkUnchanged(t, "JoinBranch", b.g, before)
	if !bytes.Equal(bg.EpochAuthenticator(), ng.EpochAuthenticator()) {
		t.Fatal("branch members disagree on the epoch authenticator")
	}
	ct, err := bg.Protect([]byte("just us"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := ng.ProcessMessage(ct); err != nil || string(rec.Plaintext) != "just us" {
		t.Fatalf("branch message: %v", err)
	}
	// The old group goes on.
	if !a.g.Active() || !b.g.Active() {
		t.Fatal("branching closed the old group")
	}

	// A branch with an outsider in it (built past the creator's check)
	// is refused by the members.
	kpB2, privB2 := scKeyPackage(t, b)
	signer := &Signer{Credential: a.signer.Credential, SignaturePub: a.signer.SignaturePub, SignaturePriv: a.signer.SignaturePriv}
	_, res2, err := a.g.createResumed(ResumptionPSKBranch, scSuite, nil, exts, signer, []*KeyPackage{kpB2, kpO}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.g.JoinBranch(res2.Welcome, privB2, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("branch with an outsider: %v", err)
	}
	if _, err := JoinFromWelcome(res2.Welcome, privO, nil); !errors.Is(err, ErrUnknownPSK) {
		t.Fatalf("outsider joined a branch: %v", err)
	}

	// A branch of an epoch that is over is refused.
	_, res3, err := a.g.CreateBranch(nil, exts, nil, []*KeyPackage{kpB2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	up, err := a.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, up)
	before = mustState(t, b.g)
	if _, err := b.g.JoinBranch(res3.Welcome, privB2, nil); !errors.Is(err, ErrResumptionMismatch) {
		t.Fatalf("branch of an old epoch: %v", err)
	}
	checkUnchanged(t, "refused JoinBranch", b.g, before)

	// A branch PSK outside a branch is an invalid proposal.
	nonce := bytes.Repeat([]byte{7}, a.g.suite.HashSize())
	psk := Proposal{Type: ProposalPreSharedKey, PreSharedKey: &PreSharedKeyProposal{PSK: PreSharedKeyID{
		Type: PSKTypeResumption, Usage: ResumptionPSKBranch, GroupID: a.g.GroupID(), Epoch: a.g.Epoch(), Nonce: nonce}}}
	before = mustState(t, a.g)
	if _, err := a.g.Commit(&CommitOptions{Proposals: []Proposal{psk}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("branch PSK in a commit: %v", err)
	}
	psk.PreSharedKey.PSK.Usage = ResumptionPSKReInit
	if _, err := a.g.Commit(&CommitOptions{Proposals: []Proposal{psk}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("reinit PSK in a commit: %v", err)
	}
	checkUnchanged(t, "refused PSK commits", a.g, before)
}
