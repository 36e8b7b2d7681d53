package mls

import (
	"bytes"
	"errors"
	"testing"
)

// pgFollower is a delivery service's view following a scGroup.
type pgFollower struct {
	t  testing.TB
	pg *PublicGroup
}

func newFollower(t testing.TB, g *Group) *pgFollower {
	t.Helper()
	gi, err := g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	pg, err := NewPublicGroup(gi)
	if err != nil {
		t.Fatalf("NewPublicGroup: %v", err)
	}
	return &pgFollower{t: t, pg: pg}
}

// apply applies a commit and round-trips the view through storage.
func (f *pgFollower) apply(msg []byte) *PublicCommit {
	f.t.Helper()
	pc, err := f.pg.ApplyCommit(msg)
	if err != nil {
		f.t.Fatalf("ApplyCommit: %v", err)
	}
	b, _ := f.pg.MarshalBinary()
	if f.pg, err = UnmarshalPublicGroup(b); err != nil {
		f.t.Fatalf("UnmarshalPublicGroup: %v", err)
	}
	return pc
}

// matches checks that the view agrees with a member's state.
func (f *pgFollower) matches(g *Group) {
	f.t.Helper()
	want, got := g.GroupContext(), f.pg.GroupContext()
	if !bytes.Equal(want.Marshal(), got.Marshal()) {
		f.t.Fatalf("view at epoch %d differs from the member's GroupContext at epoch %d", got.Epoch, want.Epoch)
	}
	if !bytes.Equal(f.pg.interim, g.interim) {
		f.t.Fatal("interim transcript hash differs")
	}
	if len(f.pg.Members()) != len(g.Members()) {
		f.t.Fatalf("view has %d members, group %d", len(f.pg.Members()), len(g.Members()))
	}
}

// refused checks that msg is refused with want and leaves the view unchanged.
func (f *pgFollower) refused(name string, msg []byte, want ...error) {
	f.t.Helper()
	before, _ := f.pg.MarshalBinary()
	_, err := f.pg.ApplyCommit(msg)
	ok := false
	for _, w := range want {
		ok = ok || errors.Is(err, w)
	}
	if !ok {
		f.t.Errorf("%s: ApplyCommit = %v, want one of %v", name, err, want)
	}
	after, _ := f.pg.MarshalBinary()
	if !bytes.Equal(before, after) {
		f.t.Errorf("%s: refused commit changed the view", name)
	}
}

func TestPublicGroupFollowsGroup(t *testing.T) {
	sg := scCreate(t, Config{PublicHandshake: true})
	a := sg.members[0]
	f := newFollower(t, a.g)
	f.matches(a.g)

	// Adds: the view learns the new members.
	kpb, privb := scKeyPackage(t, scNewClient(t, "member-1"))
	res, err := a.g.AddMembers([]*KeyPackage{kpb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc := f.apply(res.Message)
	sg.commitFrom(a, res)
	if len(pc.Added) != 1 || string(pc.Added[0].Identity) != "member-1" || string(pc.Committer.Identity) != "member-0" {
		t.Fatalf("add: %+v", pc)
	}
	b := &scClient{name: "member-1", signer: nil}
	if b.g, err = JoinFromWelcome(res.Welcome, privb, &JoinOptions{Config: a.g.config}); err != nil {
		t.Fatal(err)
	}
	sg.members = append(sg.members, b)
	sg.next = 2
	f.matches(a.g)
	news := sg.add(a, 3, false)
	_ = news
	// sg.add applied its commit to the members only: rebuild the view from
	// a GroupInfo, as a node that registered late would.
	f = newFollower(t, b.g)
	f.matches(a.g)

	// A self-update with a path, by another member.
	res, err = news[0].g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.apply(res.Message)
	sg.commitFrom(news[0], res)
	f.matches(a.g)

	// A proposal by reference: b proposes its own removal, a commits it.
	prop, err := b.g.ProposeRemove(b.g.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	pp, err := f.pg.ProcessProposal(prop)
	if err != nil {
		t.Fatalf("ProcessProposal: %v", err)
	}
	if pp.Proposal.Type != ProposalRemove || string(pp.Sender.Identity) != "member-1" {
		t.Fatalf("proposal %+v", pp)
	}
	if _, err := f.pg.ProcessProposal(prop); err == nil {
		t.Fatal("the same proposal cached twice")
	}
	// The view keeps a bounded number of proposals per epoch.
	full := *f.pg
	full.proposals = make([]cachedProposal, MaxPublicProposals)
	if _, err := full.ProcessProposal(prop); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("proposal past the bound: %v", err)
	}
	for _, m := range sg.members[1:] {
		if m != b {
			if _, err := m.g.ProcessMessage(prop); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := a.g.ProcessMessage(prop); err != nil {
		t.Fatal(err)
	}
	res, err = a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The view round-trips its cached proposal through storage.
	pc = f.apply(res.Message)
	if len(pc.Removed) != 1 || string(pc.Removed[0].Identity) != "member-1" {
		t.Fatalf("removed %+v", pc.Removed)
	}
	if _, err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	var rest []*scClient
	for _, m := range sg.members {
		if m == a {
			rest = append(rest, m)
			continue
		}
		if _, err := m.g.ProcessMessage(res.Message); err != nil {
			t.Fatal(err)
		}
		if m != b {
			rest = append(rest, m)
		}
	}
	sg.members = rest
	f.matches(a.g)

	// An external resync: the joiner's new leaf replaces its old one.
	c := news[1]
	gi, _ := a.g.GroupInfo()
	ng, msg, err := JoinExternal(gi, c.signer, &ExternalJoinOptions{Resync: true, Config: a.g.config})
	if err != nil {
		t.Fatal(err)
	}
	pc = f.apply(msg)
	if !pc.External || len(pc.Removed) != 1 || string(pc.Committer.Identity) != c.name {
		t.Fatalf("external: %+v", pc)
	}
	for _, m := range sg.members {
		if m != c {
			if _, err := m.g.ProcessMessage(msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.g = ng
	f.matches(a.g)
	sg.agree()
}

func TestPublicGroupRefusesBadCommits(t *testing.T) {
	sg, a, b, c := scThree(t, Config{PublicHandshake: true})
	f := newFollower(t, a.g)

	// Garbage, and a handshake message sent as a PrivateMessage.
	f.refused("garbage", []byte("garbage"), ErrDecode, ErrInvalidMessage)
	priv, err := a.g.Protect([]byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.refused("private message", priv, ErrInvalidMessage)

	// A valid commit whose signature is broken, or made by a non-member.
	res, err := b.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ParseMLSMessage(res.Message)
	m.PublicMessage.Auth.Signature[3] ^= 1
	f.refused("bad signature", m.Marshal(), ErrInvalidMessage)
	outsider := scNewClient(t, "outsider")
	fc := m.PublicMessage.Content
	ac, err := SignFramedContent(a.g.suite, outsider.signer.SignaturePriv, WireFormatPublicMessage, &fc, &a.g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = m.PublicMessage.Auth.ConfirmationTag
	pm := &PublicMessage{Content: ac.Content, Auth: ac.Auth, MembershipTag: make([]byte, b.g.suite.HashSize())}
	f.refused("outsider signature", (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}).Marshal(), ErrInvalidMessage)
	if err := b.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}

	// Invalid proposals, signed by a member.
	byValue := func(p Proposal) []ProposalOrRef { return []ProposalOrRef{{Type: ProposalOrRefProposal, Proposal: &p}} }
	f.refused("remove of a blank leaf", forgeCommit(t, b.g, &Commit{Proposals: byValue(Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: 9}})}), ErrInvalidCommit, ErrInvalidProposal)
	f.refused("committer removes itself", forgeCommit(t, b.g, &Commit{Proposals: byValue(Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: b.g.OwnLeaf()}})}), ErrInvalidCommit)
	f.refused("empty without path", forgeCommit(t, b.g, &Commit{}), ErrInvalidCommit)
	f.refused("unknown reference", forgeCommit(t, b.g, &Commit{Proposals: []ProposalOrRef{{Type: ProposalOrRefReference, Reference: make([]byte, 32)}}}), ErrInvalidCommit)

	// A path whose parent hashes do not verify.
	res, err = c.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ = ParseMLSMessage(res.Message)
	path := m.PublicMessage.Content.Commit.Path
	path.Nodes[len(path.Nodes)-1].EncryptionKey[0] ^= 1
	ac2, err := c.g.signContent(ContentCommit, nil, WireFormatPublicMessage)(&FramedContent{Commit: m.PublicMessage.Content.Commit})
	if err != nil {
		t.Fatal(err)
	}
	ac2.Auth.ConfirmationTag = m.PublicMessage.Auth.ConfirmationTag
	pm2, _ := ProtectPublic(c.g.suite, ac2, c.g.keys.membershipKey, &c.g.ctx)
	f.refused("bad parent hash", (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm2}).Marshal(), ErrInvalidCommit)
	if err := c.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}

	// A future epoch and a past one.
	old := forgeCommit(t, a.g, &Commit{Proposals: byValue(Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: c.g.OwnLeaf()}})})
	res, err = a.g.RemoveMembers([]LeafIndex{c.g.OwnLeaf()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.apply(res.Message)
	if _, err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.g.ProcessMessage(res.Message); err != nil {
		t.Fatal(err)
	}
	f.refused("past epoch", old, ErrWrongEpoch)
	res2, err := a.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	ahead := *f.pg
	ahead.ctx.Epoch--
	f2 := &pgFollower{t: t, pg: &ahead}
	f2.refused("future epoch", res2.Message, ErrWrongEpoch)
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}

	// The member just removed signs a commit for the current epoch from
	// its old leaf: the leaf is blank now.
	fcr := &FramedContent{GroupID: a.g.GroupID(), Epoch: f.pg.Epoch(), Sender: MemberSender(c.g.OwnLeaf()),
		ContentType: ContentCommit, Commit: &Commit{}}
	acr, err := SignFramedContent(a.g.suite, c.signer.SignaturePriv, WireFormatPublicMessage, fcr, &a.g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	acr.Auth.ConfirmationTag = make([]byte, a.g.suite.HashSize())
	pmr := &PublicMessage{Content: acr.Content, Auth: acr.Auth, MembershipTag: make([]byte, a.g.suite.HashSize())}
	f.refused("removed member", (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pmr}).Marshal(), ErrInvalidMessage)

	// The group goes on: the view follows the next valid commit.
	sg.members = []*scClient{a, b}
	res, err = b.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.apply(res.Message)
	sg.commitFrom(b, res)
	f.matches(a.g)
}

func TestPublicGroupRefusesBadGroupInfo(t *testing.T) {
	_, a, _, _ := scThree(t, Config{PublicHandshake: true})
	gi, _ := a.g.groupInfo(true, true)
	gi.Signature[0] ^= 1
	if _, err := NewPublicGroup((&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}).Marshal()); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("bad signature: %v", err)
	}
	gi, _ = a.g.groupInfo(false, true)
	if _, err := NewPublicGroup((&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}).Marshal()); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("no tree: %v", err)
	}
	gi, _ = a.g.groupInfo(true, true)
	gi.GroupContext.TreeHash[0] ^= 1
	if err := gi.Sign(a.g.suite, a.g.sigPriv); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPublicGroup((&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}).Marshal()); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("wrong tree hash: %v", err)
	}
	for _, b := range [][]byte{nil, {0, 1}, make([]byte, 100)} {
		if _, err := UnmarshalPublicGroup(b); err == nil {
			t.Fatalf("UnmarshalPublicGroup(%x) accepted", b)
		}
	}
}

// FuzzPublicGroup feeds a stored view and a handshake message to the
// delivery service's entry points: decoding never panics, a refused
// message leaves the view unchanged, and an accepted one yields a view that
// round-trips through storage.
func FuzzPublicGroup(f *testing.F) {
	_, a, b, _ := scThree(f, Config{PublicHandshake: true})
	gi, err := a.g.GroupInfo()
	if err != nil {
		f.Fatal(err)
	}
	pg, err := NewPublicGroup(gi)
	if err != nil {
		f.Fatal(err)
	}
	view, _ := pg.MarshalBinary()
	res, err := b.g.SelfUpdate(nil)
	if err != nil {
		f.Fatal(err)
	}
	prop, err := a.g.ProposeRemove(b.g.OwnLeaf())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(view, res.Message, false)
	f.Add(view, prop, true)
	f.Add(view, gi, false)
	f.Fuzz(func(t *testing.T, view, msg []byte, proposal bool) {
		p, err := UnmarshalPublicGroup(view)
		if err != nil {
			if pg, gerr := NewPublicGroup(msg); gerr == nil {
				if _, err := pg.MarshalBinary(); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		before, _ := p.MarshalBinary()
		if proposal {
			_, err = p.ProcessProposal(msg)
		} else {
			_, err = p.ApplyCommit(msg)
		}
		after, _ := p.MarshalBinary()
		if err != nil {
			if !bytes.Equal(before, after) {
				t.Fatal("refused message changed the view")
			}
			return
		}
		if _, err := UnmarshalPublicGroup(after); err != nil {
			t.Fatalf("accepted view does not decode: %v", err)
		}
	})
}

// Metadata for joiners travels inside the Welcome, never in the public
// commit or the GroupInfo a delivery service sees.
func TestWelcomeExtensionsStayPrivate(t *testing.T) {
	a := scNewClient(t, "alice")
	g, err := CreateGroup(scSuite, nil, a.signer, &CreateOptions{Config: Config{PublicHandshake: true}})
	if err != nil {
		t.Fatal(err)
	}
	kp, priv := scKeyPackage(t, scNewClient(t, "bob"))
	secret := []byte("a secret group name")
	res, err := g.AddMembers([]*KeyPackage{kp}, &CommitOptions{WelcomeExtensions: []Extension{{Type: scNameExt, Data: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	gi, _ := g.GroupInfo()
	for name, b := range map[string][]byte{"commit": res.Message, "welcome": res.Welcome, "groupinfo": gi} {
		if bytes.Contains(b, secret) {
			t.Errorf("the %s carries the metadata in clear", name)
		}
	}
	bg, err := JoinFromWelcome(res.Welcome, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	exts := bg.WelcomeExtensions()
	if len(exts) != 1 || exts[0].Type != scNameExt || !bytes.Equal(exts[0].Data, secret) {
		t.Fatalf("WelcomeExtensions = %+v", exts)
	}
}
