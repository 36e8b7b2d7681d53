package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Attacks on the application's decisions (policy.go): each test plays a
// hostile member or outsider against real groups and checks that the
// Policy sees and can refuse what it does, and that a refusal leaves the
// group byte for byte as it was.

// directory is an IdentityProvider that binds each identity to one
// signature key, as a contact list or an identity-key rule does.
type directory map[string][]byte

func (d directory) ValidateLeaf(l *LeafInfo) error {
	want, ok := d[string(l.Credential.Identity)]
	if !ok || !bytes.Equal(want, l.SignatureKey) {
		return fmt.Errorf("%q is not bound to this signature key", l.Credential.Identity)
	}
	return nil
}

func (d directory) ValidSuccessor(prev Member, next *LeafInfo) error {
	if !bytes.Equal(prev.Identity, next.Credential.Identity) || !bytes.Equal(prev.SignatureKey, next.SignatureKey) {
		return fmt.Errorf("%q may not replace %q", next.Credential.Identity, prev.Identity)
	}
	return nil
}

// directoryOf lists the members of sg and the extra clients.
func directoryOf(sg *scGroup, extra ...*scClient) directory {
	d := directory{}
	for _, c := range append(append([]*scClient{}, sg.members...), extra...) {
		d[string(c.signer.Credential.Identity)] = c.signer.SignaturePub
	}
	return d
}

// refusedIdentically processes msg on g, expects an error matching want,
// and checks that g did not change.
func refusedIdentically(t *testing.T, g *Group, msg []byte, want error) error {
	t.Helper()
	before, _ := g.MarshalBinary()
	_, err := g.ProcessMessage(msg)
	if !errors.Is(err, want) {
		t.Fatalf("ProcessMessage: got %v, want %v", err, want)
	}
	after, _ := g.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Fatalf("refusal (%v) changed the group", err)
	}
	return err
}

// unchangedBy runs op on g, expects an error matching want, and checks
// that g did not change.
func unchangedBy(t *testing.T, g *Group, want error, op func() error) {
	t.Helper()
	before, _ := g.MarshalBinary()
	err := op()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	after, _ := g.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Fatalf("refusal (%v) changed the group", err)
	}
}

// newMemberProposal is an outsider's Add of itself (sender
// new_member_proposal), made from the group's public context only.
func newMemberProposal(t *testing.T, gc *GroupContext, c *scClient, kp *KeyPackage) []byte {
	t.Helper()
	s, _ := LookupSuite(gc.CipherSuite)
	ac, err := SignFramedContent(s, c.signer.SignaturePriv, WireFormatPublicMessage, &FramedContent{
		GroupID: gc.GroupID, Epoch: gc.Epoch, Sender: Sender{Type: SenderNewMemberProposal}, AuthenticatedData: []byte{},
		ContentType: ContentProposal, Proposal: &Proposal{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}},
	}, gc)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := ProtectPublic(s, ac, nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	return (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}).Marshal()
}

func TestPolicyOutsiderNewMemberProposalNotCommitted(t *testing.T) {
	sg := scCreate(t, Config{PublicHandshake: true})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	mallory := scNewClient(t, "mallory")
	kp, _ := scKeyPackage(t, mallory)
	gc := a.g.GroupContext()
	msg := newMemberProposal(t, &gc, mallory, kp)

	// The default policy refuses it: nothing is cached, the next commit
	// adds nobody.
	refusedIdentically(t, a.g, msg, ErrProposalRefused)
	if a.g.PendingProposals() != 0 {
		t.Fatalf("%d proposals cached", a.g.PendingProposals())
	}
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 0 {
		t.Fatalf("the commit added %d outsiders", len(res.Added))
	}
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}

	// An application that keeps new-member proposals commits it.
	b.g.SetPolicy(Policy{Proposals: KeepSenders{SenderMember, SenderNewMemberProposal}})
	r, err := b.g.ProcessMessage(msg)
	if err != nil || r.SenderType != SenderNewMemberProposal || string(r.Sender.Identity) != "mallory" {
		t.Fatalf("kept proposal: %v, %+v", err, r)
	}
	res, err = b.g.Commit(nil)
	if err != nil || len(res.Added) != 1 {
		t.Fatalf("commit of the kept proposal: %v, added %d", err, len(res.Added))
	}
}

// recordingFilter keeps everything and records what it was asked.
type recordingFilter struct{ seen []ProposalInfo }

func (f *recordingFilter) KeepProposal(p *ProposalInfo) error {
	f.seen = append(f.seen, *p)
	return nil
}

func TestPolicyProposalFilterSeesSenders(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b, c := sg.members[0], sg.members[1], sg.members[2]
	f := &recordingFilter{}
	b.g.SetPolicy(Policy{Proposals: f})
	msg, err := c.g.ProposeRemove(c.g.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.g.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	// A member's leave request is kept by default: a commits it.
	res, err := a.g.Commit(nil)
	if err != nil || len(res.Removed) != 1 {
		t.Fatalf("commit of the leave request: %v, removed %d", err, len(res.Removed))
	}
	if len(f.seen) != 1 || f.seen[0].SenderType != SenderMember || f.seen[0].Sender.Leaf != c.g.OwnLeaf() ||
		f.seen[0].InCommit || f.seen[0].Ref == nil || f.seen[0].Proposal.Type != ProposalRemove {
		t.Fatalf("filter saw %+v", f.seen)
	}
	if _, err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.g.ProcessMessage(res.Message); err != nil {
		t.Fatal(err)
	}
	if len(f.seen) != 1 {
		t.Fatalf("a commit by reference asked the filter again: %+v", f.seen[1:])
	}
}

func TestPolicyAddNamingAnotherIdentity(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b, c := sg.members[0], sg.members[1], sg.members[2]
	a.g.SetPolicy(Policy{Identity: directoryOf(sg)})
	// Mallory makes a KeyPackage that names b.
	mallory, err := NewSigner(scSuite, b.signer.Credential.Identity)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := scKeyPackage(t, &scClient{name: "mallory", signer: mallory})

	// Committed by a itself: refused.
	unchangedBy(t, a.g, ErrCredentialRefused, func() error {
		_, err := a.g.AddMembers([]*KeyPackage{kp}, nil)
		return err
	})
	// Proposed to a: refused.
	prop, err := c.g.ProposeAdd(kp)
	if err != nil {
		t.Fatal(err)
	}
	refusedIdentically(t, a.g, prop, ErrCredentialRefused)
	// Committed by value by another member: refused.
	cs := c.g.clone()
	cs.proposals = nil
	res, err := cs.AddMembers([]*KeyPackage{kp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = refusedIdentically(t, a.g, res.Message, ErrCredentialRefused)
	if !bytes.Contains([]byte(err.Error()), []byte("key_package")) {
		t.Fatalf("refusal does not say which leaf: %v", err)
	}
	// b, without a policy, takes it: the hook is what stops it.
	if _, err := b.g.ProcessMessage(res.Message); err != nil {
		t.Fatalf("without a policy: %v", err)
	}
}

// commitWithLeaf makes c commit with an UpdatePath whose new leaf mutate
// changed (a member that changes its credential in its own commit).
func commitWithLeaf(t *testing.T, c *scClient, mutate func(*LeafNode)) *CommitResult {
	t.Helper()
	g := c.g.clone()
	mutate(g.tree.LeafNode(g.self))
	res, err := g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// inspector records staged commits and refuses them if refuse is set.
type inspector struct {
	seen   []*StagedCommit
	refuse bool
}

func (i *inspector) InspectCommit(c *StagedCommit) error {
	i.seen = append(i.seen, c)
	if i.refuse {
		return errors.New("not this one")
	}
	return nil
}

func TestPolicyUpdatePathCredentialChange(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b, c := sg.members[0], sg.members[1], sg.members[2]
	res := commitWithLeaf(t, c, func(ln *LeafNode) { ln.Credential = NewBasicCredential([]byte("member-0")) })

	// Reported: the staged commit shows the old and the new credential.
	in := &inspector{refuse: true}
	b.g.SetPolicy(Policy{Commits: in})
	refusedIdentically(t, b.g, res.Message, ErrCommitRefused)
	if len(in.seen) != 1 {
		t.Fatalf("inspector called %d times", len(in.seen))
	}
	sc := in.seen[0]
	if len(sc.Updated) != 1 || !sc.Updated[0].ByPath || sc.Updated[0].Leaf != c.g.OwnLeaf() ||
		string(sc.Updated[0].Old.Identity) != "member-2" || string(sc.Updated[0].New.Identity) != "member-0" ||
		string(sc.Committer.Identity) != "member-2" || sc.SenderType != SenderMember || sc.NewEpoch != sc.Epoch+1 {
		t.Fatalf("staged commit: %+v", sc)
	}
	// Refused by the identity rule.
	a.g.SetPolicy(Policy{Identity: directoryOf(sg)})
	refusedIdentically(t, a.g, res.Message, ErrCredentialRefused)
	// Accepted when the inspector accepts, and reported in Received.
	in.refuse = false
	r, err := b.g.ProcessMessage(res.Message)
	if err != nil || r.Commit == nil || len(r.Commit.Updated) != 1 {
		t.Fatalf("accepted commit: %v, %+v", err, r)
	}
}

func TestPolicyResyncUnderAnotherIdentity(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b := sg.members[0], sg.members[1]
	gi, err := a.g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	// Mallory claims b's (public) identity with her own key and "resyncs",
	// which removes b.
	mallory, err := NewSigner(scSuite, b.signer.Credential.Identity)
	if err != nil {
		t.Fatal(err)
	}
	_, msg, err := JoinExternal(gi, mallory, &ExternalJoinOptions{Resync: true})
	if err != nil {
		t.Fatal(err)
	}
	a.g.SetPolicy(Policy{Identity: directoryOf(sg)})
	refusedIdentically(t, a.g, msg, ErrCredentialRefused)

	// A rule that checks only the successor refuses it too.
	sg.members[2].g.SetPolicy(Policy{Identity: successorOnly{}})
	err = refusedIdentically(t, sg.members[2].g, msg, ErrCredentialRefused)
	if !bytes.Contains([]byte(err.Error()), []byte("succeed")) {
		t.Fatalf("refusal is not about the successor: %v", err)
	}

	// b's own resync passes both.
	_, own, err := JoinExternal(gi, b.signer, &ExternalJoinOptions{Resync: true})
	if err != nil {
		t.Fatal(err)
	}
	in := &inspector{}
	a.g.SetPolicy(Policy{Identity: directoryOf(sg), Commits: in})
	if _, err := a.g.ProcessMessage(own); err != nil {
		t.Fatalf("b's own resync: %v", err)
	}
	if len(in.seen) != 1 || !in.seen[0].Resync || in.seen[0].SenderType != SenderNewMemberCommit || len(in.seen[0].Removed) != 1 {
		t.Fatalf("staged resync: %+v", in.seen)
	}
}

// successorOnly accepts every leaf and only the same signature key as a
// successor.
type successorOnly struct{}

func (successorOnly) ValidateLeaf(*LeafInfo) error { return nil }
func (successorOnly) ValidSuccessor(prev Member, next *LeafInfo) error {
	if !bytes.Equal(prev.SignatureKey, next.SignatureKey) {
		return errors.New("another signature key")
	}
	return nil
}

func TestPolicyWelcomeTreeValidated(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a := sg.members[0]
	d := scNewClient(t, "member-d")
	kp, priv := scKeyPackage(t, d)
	res, err := a.g.AddMembers([]*KeyPackage{kp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The joiner knows a and itself, not member-1.
	dir := directory{"member-0": a.signer.SignaturePub, "member-d": d.signer.SignaturePub}
	_, err = JoinFromWelcome(res.Welcome, priv, &JoinOptions{Policy: Policy{Identity: dir}})
	if !errors.Is(err, ErrCredentialRefused) || !bytes.Contains([]byte(err.Error()), []byte("tree leaf 1")) {
		t.Fatalf("JoinFromWelcome: %v", err)
	}
	dir["member-1"] = sg.members[1].signer.SignaturePub
	if _, err := JoinFromWelcome(res.Welcome, priv, &JoinOptions{Policy: Policy{Identity: dir}}); err != nil {
		t.Fatal(err)
	}
	// The same for an external join.
	gi, err := sg.members[1].g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	delete(dir, "member-1")
	if _, _, err := JoinExternal(gi, d.signer, &ExternalJoinOptions{Policy: Policy{Identity: dir}}); !errors.Is(err, ErrCredentialRefused) {
		t.Fatalf("JoinExternal: %v", err)
	}
}

func TestPolicyUpdateProposalSuccessor(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	// b proposes an Update whose leaf names a.
	g := b.g.clone()
	g.tree.LeafNode(g.self).Credential = NewBasicCredential([]byte("member-0"))
	msg, err := g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	a.g.SetPolicy(Policy{Identity: directoryOf(sg)})
	refusedIdentically(t, a.g, msg, ErrCredentialRefused)
	a.g.SetPolicy(Policy{Identity: successorOnly{}})
	if _, err := a.g.ProcessMessage(msg); err != nil {
		t.Fatalf("same key, other name, without a name rule: %v", err)
	}
}

func TestPolicyExpiredCachedAddDoesNotFreezeCommits(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	d := scNewClient(t, "member-d")
	kp, _, err := GenerateKeyPackage(scSuite, d.signer, &KeyPackageParams{ExtensionTypes: []ExtensionType{scNameExt}, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := b.g.ProposeAdd(kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	// Two hours later the cached Add has expired.
	later := time.Now().Add(2 * time.Hour)
	a.g.SetPolicy(Policy{Lifetimes: &LifetimeRules{Now: func() time.Time { return later }}})
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatalf("commit with an expired cached Add: %v", err)
	}
	if len(res.Added) != 0 {
		t.Fatalf("the expired Add was committed")
	}
	b.g.SetPolicy(Policy{Lifetimes: &LifetimeRules{Now: func() time.Time { return later }}})
	sg.commitFrom(a, res)
	sg.agree()
}

func TestPolicyAddOfClientThatJoinedOtherwise(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	d := scNewClient(t, "member-d")
	kp, _ := scKeyPackage(t, d)
	msg, err := b.g.ProposeAdd(kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	// d joins by itself before anyone commits the Add.
	gi, err := a.g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	dg, ext, err := JoinExternal(gi, d.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sg.members {
		if _, err := m.g.ProcessMessage(ext); err != nil {
			t.Fatal(err)
		}
	}
	d.g = dg
	sg.members = append(sg.members, d)
	sg.agree()
	// The Add is gone with the epoch; a new one for the same client, kept
	// in this epoch, must not block a's commits either.
	msg, err = b.g.ProposeAdd(kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatalf("commit with an Add of a member: %v", err)
	}
	if len(res.Added) != 0 {
		t.Fatal("a member was added twice")
	}
}

func TestPolicyRemovalEvasion(t *testing.T) {
	// c is about to be removed; an Add by reference must not bring it
	// back in the same commit, nor may c add others on its way out.
	for _, tc := range []struct {
		name     string
		proposer int // who proposes the Add: 1 (b, c's accomplice) or 2 (c)
		add      func(c *scClient) *KeyPackage
	}{
		{"own other KeyPackage", 1, func(c *scClient) *KeyPackage { kp, _ := scKeyPackage(t, c); return kp }},
		{"same identity, new key", 1, func(c *scClient) *KeyPackage {
			s, err := NewSigner(scSuite, c.signer.Credential.Identity)
			if err != nil {
				t.Fatal(err)
			}
			kp, _ := scKeyPackage(t, &scClient{name: c.name, signer: s})
			return kp
		}},
		{"a friend, proposed by the removed member", 2, func(*scClient) *KeyPackage {
			kp, _ := scKeyPackage(t, scNewClient(t, "friend"))
			return kp
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sg := scCreate(t, Config{})
			sg.add(sg.members[0], 2, false)
			a, c := sg.members[0], sg.members[2]
			msg, err := sg.members[tc.proposer].g.ProposeAdd(tc.add(c))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.g.ProcessMessage(msg); err != nil {
				t.Fatal(err)
			}
			res, err := a.g.RemoveMembers([]LeafIndex{c.g.OwnLeaf()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Added) != 0 || len(res.Removed) != 1 {
				t.Fatalf("removal commit added %d, removed %d", len(res.Added), len(res.Removed))
			}
			if _, err := a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			if _, ok := a.g.MemberByIdentity(c.signer.Credential.Identity); ok {
				t.Fatal("the removed member is still in the group")
			}
		})
	}
}

func TestStagedCommitReportsWhatItDoes(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b, c := sg.members[0], sg.members[1], sg.members[2]
	d := scNewClient(t, "member-d")
	kp, _ := scKeyPackage(t, d)
	exts := append(a.g.Extensions(), Extension{Type: ExtensionApplicationID, Data: []byte("app")})
	res, err := a.g.UpdateGroupContextExtensions(exts, &CommitOptions{Proposals: []Proposal{
		{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}},
		{Type: ProposalRemove, Remove: &RemoveProposal{Removed: c.g.OwnLeaf()}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	in := &inspector{}
	b.g.SetPolicy(Policy{Commits: in})
	r, err := b.g.ProcessMessage(res.Message)
	if err != nil {
		t.Fatal(err)
	}
	sc := r.Commit
	if len(in.seen) != 1 || in.seen[0] != sc {
		t.Fatal("Received.Commit is not what the inspector saw")
	}
	if string(sc.Committer.Identity) != "member-0" || sc.SenderType != SenderMember || len(sc.Proposals) != 3 ||
		!sc.Proposals[0].InCommit || len(sc.Added) != 1 || string(sc.Added[0].Identity) != "member-d" ||
		len(sc.Removed) != 1 || string(sc.Removed[0].Identity) != "member-2" || !sc.ExtensionsChanged ||
		len(sc.NewExtensions) != len(sc.OldExtensions)+1 || len(sc.Updated) != 1 || !sc.Updated[0].ByPath || sc.SelfRemoved {
		t.Fatalf("staged commit: %+v", sc)
	}
	// The removed member's inspector sees its removal.
	in2 := &inspector{}
	c.g.SetPolicy(Policy{Commits: in2})
	if r, err := c.g.ProcessMessage(res.Message); err != nil || !r.SelfRemoved || len(in2.seen) != 1 || !in2.seen[0].SelfRemoved {
		t.Fatalf("removed member: %v %+v", err, in2.seen)
	}
}

func TestProposalFilterRefusesExternalCommits(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a := sg.members[0]
	gi, err := a.g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	_, msg, err := JoinExternal(gi, scNewClient(t, "outsider").signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.g.SetPolicy(Policy{Proposals: KeepSenders{SenderMember}})
	refusedIdentically(t, a.g, msg, ErrProposalRefused)
	a.g.SetPolicy(Policy{})
	if _, err := a.g.ProcessMessage(msg); err != nil {
		t.Fatalf("external commit under the default policy: %v", err)
	}
}

func TestPolicyCheckKeyPackage(t *testing.T) {
	bob, mallory := scNewClient(t, "bob"), scNewClient(t, "mallory")
	fake, err := NewSigner(scSuite, []byte("bob"))
	if err != nil {
		t.Fatal(err)
	}
	mallory.signer = fake
	p := Policy{Identity: directory{"bob": bob.signer.SignaturePub}}
	kp, _ := scKeyPackage(t, bob)
	if err := p.CheckKeyPackage(kp, scSuite); err != nil {
		t.Fatalf("bob's own KeyPackage: %v", err)
	}
	bad, _ := scKeyPackage(t, mallory)
	if err := p.CheckKeyPackage(bad, scSuite); !errors.Is(err, ErrCredentialRefused) {
		t.Fatalf("a KeyPackage naming bob under another key: %v", err)
	}
	p.Lifetimes = &LifetimeRules{MaxLifetime: 30 * 24 * time.Hour}
	if err := p.CheckKeyPackage(kp, scSuite); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("a 90-day KeyPackage under a 30-day maximum: %v", err)
	}
}
