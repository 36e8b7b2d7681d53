package mls

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// scThree makes a group of three clients, all agreed.
func scThree(t testing.TB, cfg Config) (*scGroup, *scClient, *scClient, *scClient) {
	t.Helper()
	sg := scCreate(t, cfg)
	sg.add(sg.members[0], 2, false)
	sg.agree()
	return sg, sg.members[0], sg.members[1], sg.members[2]
}

func TestGroupConcurrentCommits(t *testing.T) {
	for _, public := range []bool{false, true} {
		sg, a, b, c := scThree(t, Config{PublicHandshake: public})
		epoch := a.g.Epoch()
		resA, err := a.g.SelfUpdate(nil)
		if err != nil {
			t.Fatal(err)
		}
		resB, err := b.g.SelfUpdate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.g.Commit(nil); !errors.Is(err, ErrPendingCommit) {
			t.Fatalf("second commit while pending: %v", err)
		}
		// The delivery service takes A's commit. A sees it echoed back.
		r, err := a.g.ProcessMessage(resA.Message)
		if err != nil || !r.OwnCommit || a.g.Epoch() != epoch+1 {
			t.Fatalf("own commit echo: %v %+v", err, r)
		}
		r, err = a.g.ProcessMessage(resA.Message)
		if err != nil || !r.OwnCommit || a.g.Epoch() != epoch+1 {
			t.Fatalf("own commit echo after merge: %v", err)
		}
		if _, err := c.g.ProcessMessage(resA.Message); err != nil {
			t.Fatal(err)
		}
		// B's commit lost: members that merged A's reject it.
		for _, m := range []*scClient{a, c} {
			before, _ := m.g.MarshalBinary()
			if _, err := m.g.ProcessMessage(resB.Message); !errors.Is(err, ErrWrongEpoch) {
				t.Fatalf("%s: losing commit gave %v, want ErrWrongEpoch", m.name, err)
			}
			after, _ := m.g.MarshalBinary()
			if !bytes.Equal(before, after) {
				t.Fatalf("%s: rejected commit changed the state", m.name)
			}
		}
		// B recovers: it processes the winner, which drops its pending
		// commit, and commits again.
		r, err = b.g.ProcessMessage(resA.Message)
		if err != nil || !r.DiscardedPendingCommit || b.g.HasPendingCommit() {
			t.Fatalf("loser processing winner: %v %+v", err, r)
		}
		if _, err := b.g.MergePendingCommit(); !errors.Is(err, ErrNoPendingCommit) {
			t.Fatalf("merge after discard: %v", err)
		}
		sg.agree()
		resB, err = b.g.SelfUpdate(nil)
		if err != nil {
			t.Fatal(err)
		}
		sg.commitFrom(b, resB)
		sg.agree()
		sg.talk("after race")
	}
}

func TestGroupDiscardPendingCommit(t *testing.T) {
	sg, a, _, _ := scThree(t, Config{})
	before := a.g.EpochAuthenticator()
	if _, err := a.g.SelfUpdate(nil); err != nil {
		t.Fatal(err)
	}
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	if err := a.g.DiscardPendingCommit(); !errors.Is(err, ErrNoPendingCommit) {
		t.Fatalf("second discard: %v", err)
	}
	if !bytes.Equal(a.g.EpochAuthenticator(), before) {
		t.Fatal("discarded commit changed the epoch")
	}
	// The handshake ratchet moved on, so a new commit is fine.
	res, err := a.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	sg.agree()
}

func TestGroupPendingCommitSurvivesStorage(t *testing.T) {
	sg, a, _, _ := scThree(t, Config{})
	d := scNewClient(t, "member-d")
	kp, priv := scKeyPackage(t, d)
	res, err := a.g.AddMembers([]*KeyPackage{kp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := a.g.MarshalBinary()
	g, err := UnmarshalGroup(b)
	if err != nil {
		t.Fatal(err)
	}
	if p := g.PendingCommit(); p == nil || !bytes.Equal(p.Message, res.Message) || !bytes.Equal(p.Welcome, res.Welcome) {
		t.Fatal("pending commit lost in storage")
	}
	a.g = g
	sg.commitFrom(a, res)
	if d.g, err = JoinFromWelcome(res.Welcome, priv, nil); err != nil {
		t.Fatal(err)
	}
	sg.members = append(sg.members, d)
	sg.agree()
	sg.talk("stored pending")
}

func TestGroupProposalsByReference(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	sg.add(a, 2, false)
	sg.agree()
	d, e := sg.members[3], sg.members[4]
	n := scNewClient(t, "member-new")
	kp, priv := scKeyPackage(t, n)
	for _, m := range sg.members {
		m.g.AddPSK([]byte("psk-id"), []byte("shared secret"))
	}
	var props [][]byte
	send := func(from *scClient, msg []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s proposing: %v", from.name, err)
		}
		for _, m := range sg.members {
			if m == from {
				continue
			}
			r, err := m.g.ProcessMessage(msg)
			if err != nil || r.Kind != KindProposal {
				t.Fatalf("%s processing proposal of %s: %v", m.name, from.name, err)
			}
		}
		props = append(props, msg)
	}
	m1, err := b.g.ProposeAdd(kp)
	send(b, m1, err)
	// The proposer sees its own proposal echoed back without harm.
	if r, err := b.g.ProcessMessage(m1); err != nil || !r.OwnProposal || r.Proposal.Type != ProposalAdd {
		t.Fatalf("own proposal echo: %v", err)
	}
	m2, err := c.g.ProposeRemove(e.g.OwnLeaf())
	send(c, m2, err)
	m3, err := d.g.ProposeUpdate()
	send(d, m3, err)
	m4, err := b.g.ProposeExternalPSK([]byte("psk-id"))
	send(b, m4, err)
	m6, err := d.g.ProposeGroupContextExtensions([]Extension{{Type: scNameExt, Data: []byte("renamed")}})
	send(d, m6, err)
	if a.g.PendingProposals() != 5 {
		t.Fatalf("%d proposals cached", a.g.PendingProposals())
	}
	oldKey := bytes.Clone(d.g.tree.LeafNode(d.g.OwnLeaf()).EncryptionKey)
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 1 || len(res.Removed) != 1 || res.Welcome == nil {
		t.Fatalf("commit added %d removed %d", len(res.Added), len(res.Removed))
	}
	sg.remove2(a, res, e)
	g, err := JoinFromWelcome(res.Welcome, priv, &JoinOptions{PSKs: []PSK{{ID: []byte("psk-id"), Secret: []byte("shared secret")}}})
	if err != nil {
		t.Fatalf("join with PSK: %v", err)
	}
	n.g = g
	sg.members = append(sg.members, n)
	sg.agree()
	for _, m := range sg.members {
		if name, _ := m.g.Extension(scNameExt); string(name) != "renamed" {
			t.Fatalf("%s sees name %q", m.name, name)
		}
	}
	if bytes.Equal(d.g.tree.LeafNode(d.g.OwnLeaf()).EncryptionKey, oldKey) {
		t.Fatal("update not applied")
	}
	sg.talk("after proposals")
	// A resumption PSK of the current epoch (a joiner could not know it,
	// so it goes in a commit without Adds).
	props = nil
	m5, err := c.g.ProposeResumptionPSK(a.g.Epoch())
	send(c, m5, err)
	res, err = a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	sg.agree()
	// A joiner without the PSK cannot join.
	n2 := scNewClient(t, "member-nopsk")
	kp2, priv2 := scKeyPackage(t, n2)
	a.g.AddPSK([]byte("only-a"), []byte("x"))
	_, err = a.g.Commit(&CommitOptions{Proposals: []Proposal{
		{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp2}},
		{Type: ProposalPreSharedKey, PreSharedKey: &PreSharedKeyProposal{PSK: PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte("psk-id"), Nonce: make([]byte, scNh())}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinFromWelcome(a.g.PendingCommit().Welcome, priv2, nil); !errors.Is(err, ErrUnknownPSK) {
		t.Fatalf("join without PSK: %v", err)
	}
}

// remove2 delivers a commit that removes victim and may do more.
func (sg *scGroup) remove2(committer *scClient, res *CommitResult, victim *scClient) {
	sg.t.Helper()
	if _, err := committer.g.MergePendingCommit(); err != nil {
		sg.t.Fatal(err)
	}
	var rest []*scClient
	for _, m := range sg.members {
		if m != committer {
			r, err := m.g.ProcessMessage(res.Message)
			if err != nil {
				sg.t.Fatalf("%s: %v", m.name, err)
			}
			if m == victim {
				if !r.SelfRemoved {
					sg.t.Fatalf("%s not removed", m.name)
				}
				continue
			}
		}
		rest = append(rest, m)
	}
	sg.members = rest
}

func TestGroupLateAndOutOfOrderMessages(t *testing.T) {
	sg, a, b, _ := scThree(t, Config{MaxForwardDistance: 20})
	var msgs [][]byte
	for i := 0; i < 5; i++ {
		m, err := b.g.Protect([]byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	for _, i := range []int{3, 0, 4} {
		r, err := a.g.ProcessMessage(msgs[i])
		if err != nil || r.Plaintext[0] != byte(i) {
			t.Fatalf("out of order message %d: %v", i, err)
		}
	}
	// Message 1 arrives after a new epoch began.
	res, err := a.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	sg.reload() // the past epoch's keys are stored too
	r, err := a.g.ProcessMessage(msgs[1])
	if err != nil || r.Plaintext[0] != 1 || r.Epoch != a.g.Epoch()-1 || string(r.Sender.Identity) != b.name {
		t.Fatalf("late message: %v", err)
	}
	if _, err := a.g.ProcessMessage(msgs[1]); err == nil {
		t.Fatal("late message read twice")
	}
	// Two more epochs: the default keeps two past epochs, so message 2 is
	// still readable; one more and it is not.
	for i := 0; i < 2; i++ {
		res, err := a.g.SelfUpdate(nil)
		if err != nil {
			t.Fatal(err)
		}
		sg.commitFrom(a, res)
	}
	if _, err := a.g.ProcessMessage(msgs[2]); !errors.Is(err, ErrEpochTooOld) {
		t.Fatalf("message from a dropped epoch: %v", err)
	}
	// A generation beyond the window is refused, and the state kept.
	var far []byte
	for i := 0; i < 30; i++ {
		if far, err = b.g.Protect([]byte("far"), nil); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := a.g.MarshalBinary()
	if _, err := a.g.ProcessMessage(far); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("message beyond the window: %v", err)
	}
	after, _ := a.g.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Fatal("refused message changed the state")
	}
}

func TestGroupReInit(t *testing.T) {
	sg, a, b, _ := scThree(t, Config{})
	msg, err := b.g.ProposeReInit([]byte("new group"), scSuite, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{a, sg.members[2]} {
		if _, err := m.g.ProcessMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	for _, m := range sg.members {
		if m.g.Active() {
			t.Fatalf("%s still active after ReInit", m.name)
		}
		if _, err := m.g.Protect([]byte("x"), nil); !errors.Is(err, ErrNotMember) {
			t.Fatalf("%s sends after ReInit: %v", m.name, err)
		}
	}
}

func TestGroupRejectsInvalidCommits(t *testing.T) {
	_, a, b, _ := scThree(t, Config{})
	// Removing oneself, adding an existing member, empty update lists.
	if _, err := a.g.RemoveMembers([]LeafIndex{a.g.OwnLeaf()}, nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("self remove: %v", err)
	}
	if _, err := a.g.RemoveMembers([]LeafIndex{7}, nil); err == nil {
		t.Fatal("remove of a blank leaf accepted")
	}
	kp, _ := scKeyPackage(t, b)
	if _, err := a.g.AddMembers([]*KeyPackage{kp}, nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("adding a current member: %v", err)
	}
	other, _ := scKeyPackage(t, scNewClient(t, "x"))
	if _, err := a.g.AddMembers([]*KeyPackage{other, other}, nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("adding the same client twice: %v", err)
	}
	if a.g.HasPendingCommit() {
		t.Fatal("a failed commit left a pending commit")
	}
	// A KeyPackage of another suite.
	s2, err := NewSigner(MLS_128_DHKEMP256_AES128GCM_SHA256_P256, []byte("p256"))
	if err != nil {
		t.Fatal(err)
	}
	kp2, _, err := GenerateKeyPackage(MLS_128_DHKEMP256_AES128GCM_SHA256_P256, s2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.AddMembers([]*KeyPackage{kp2}, nil); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("KeyPackage of another suite: %v", err)
	}
}

func TestGroupRequiredCapabilities(t *testing.T) {
	s, _ := NewSigner(scSuite, []byte("creator"))
	req := RequiredCapabilitiesExtension([]ExtensionType{0xff01}, nil, []CredentialType{CredentialBasic})
	if _, err := CreateGroup(scSuite, nil, s, &CreateOptions{Extensions: []Extension{req}}); err == nil {
		t.Fatal("creator without a required extension accepted")
	}
	g, err := CreateGroup(scSuite, nil, s, &CreateOptions{Extensions: []Extension{req}, ExtensionTypes: []ExtensionType{0xff01}})
	if err != nil {
		t.Fatal(err)
	}
	plain := scNewClient(t, "plain")
	kp, _, err := GenerateKeyPackage(scSuite, plain.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.AddMembers([]*KeyPackage{kp}, nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("member without the required extension: %v", err)
	}
	kp, _, err = GenerateKeyPackage(scSuite, plain.signer, &KeyPackageParams{ExtensionTypes: []ExtensionType{0xff01}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.AddMembers([]*KeyPackage{kp}, nil); err != nil {
		t.Fatalf("capable member: %v", err)
	}
}

func TestKeyPackageGeneration(t *testing.T) {
	c := scNewClient(t, "kp")
	kp, priv, err := GenerateKeyPackage(scSuite, c.signer, &KeyPackageParams{LastResort: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateKeyPackage(kp, scSuite, timeNow()); err != nil {
		t.Fatal(err)
	}
	if !priv.IsLastResort() {
		t.Fatal("last_resort extension missing")
	}
	b, _ := priv.MarshalBinary()
	p2, err := UnmarshalKeyPackagePrivate(b)
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := priv.Ref()
	r2, _ := p2.Ref()
	if !bytes.Equal(r1, r2) || !bytes.Equal(p2.InitPriv, priv.InitPriv) {
		t.Fatal("KeyPackagePrivate round trip differs")
	}
	// Tampering breaks validation.
	bad := *kp
	bad.InitKey = bytes.Clone(kp.LeafNode.EncryptionKey)
	if err := ValidateKeyPackage(&bad, scSuite, timeNow()); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("init key = encryption key: %v", err)
	}
	bad = *kp
	bad.Signature = bytes.Clone(kp.Signature)
	bad.Signature[0] ^= 1
	if err := ValidateKeyPackage(&bad, scSuite, timeNow()); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("bad signature: %v", err)
	}
	if err := ValidateKeyPackage(kp, scSuite, timeNow().AddDate(1, 0, 0)); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("expired: %v", err)
	}
	if err := ValidateKeyPackage(kp, MLS_128_DHKEMP256_AES128GCM_SHA256_P256, timeNow()); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("wrong suite: %v", err)
	}
}

func timeNow() time.Time { return time.Now() }

// TestGroupCommitSkipsConflictingPending: a Remove by value wins over a
// pending Update or Remove of the same member.
func TestGroupCommitSkipsConflictingPending(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	up, err := c.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := b.g.ProposeRemove(c.g.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{a, b} {
		if _, err := m.g.ProcessMessage(up); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*scClient{a, c} {
		if _, err := m.g.ProcessMessage(rm); err != nil {
			t.Fatal(err)
		}
	}
	res, err := a.g.RemoveMembers([]LeafIndex{c.g.OwnLeaf()}, nil)
	if err != nil {
		t.Fatalf("remove with a pending update of the same member: %v", err)
	}
	sg.remove2(a, res, c)
	sg.agree()
}

// forgeCommit signs commit as member g and wraps it as a PublicMessage with
// a made-up confirmation tag: enough to reach the receiver's checks of the
// proposal list and path.
func forgeCommit(t *testing.T, g *Group, commit *Commit) []byte {
	t.Helper()
	fc := &FramedContent{Commit: commit}
	ac, err := g.signContent(ContentCommit, nil, WireFormatPublicMessage)(fc)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = make([]byte, g.suite.HashSize())
	pm, err := ProtectPublic(g.suite, ac, g.keys.membershipKey, &g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}).Marshal()
}

func TestGroupReceiverChecksCommits(t *testing.T) {
	_, a, b, c := scThree(t, Config{})
	byValue := func(ps ...Proposal) []ProposalOrRef {
		var out []ProposalOrRef
		for i := range ps {
			out = append(out, ProposalOrRef{Type: ProposalOrRefProposal, Proposal: &ps[i]})
		}
		return out
	}
	remove := func(l LeafIndex) Proposal {
		return Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: l}}
	}
	gce := Proposal{Type: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensionsProposal{Extensions: []Extension{}}}
	cases := []struct {
		name   string
		commit *Commit
	}{
		{"empty without path", &Commit{}},
		{"remove without path", &Commit{Proposals: byValue(remove(c.g.OwnLeaf()))}},
		{"committer removes itself", &Commit{Proposals: byValue(remove(b.g.OwnLeaf()))}},
		{"remove of a blank leaf", &Commit{Proposals: byValue(remove(9))}},
		{"two group context extensions", &Commit{Proposals: byValue(gce, gce)}},
		{"external init", &Commit{Proposals: byValue(Proposal{Type: ProposalExternalInit, ExternalInit: &ExternalInitProposal{KEMOutput: []byte{1}}})}},
		{"unknown reference", &Commit{Proposals: []ProposalOrRef{{Type: ProposalOrRefReference, Reference: make([]byte, 32)}}}},
		{"bad confirmation tag", &Commit{Proposals: byValue(Proposal{Type: ProposalPreSharedKey, PreSharedKey: &PreSharedKeyProposal{PSK: PreSharedKeyID{Type: PSKTypeResumption, Usage: ResumptionPSKApplication, GroupID: b.g.GroupID(), Epoch: b.g.Epoch(), Nonce: make([]byte, 32)}}})}},
	}
	for _, tc := range cases {
		msg := forgeCommit(t, b.g, tc.commit)
		before, _ := a.g.MarshalBinary()
		_, err := a.g.ProcessMessage(msg)
		if !errors.Is(err, ErrInvalidCommit) && !errors.Is(err, ErrInvalidProposal) {
			t.Errorf("%s: %v, want ErrInvalidCommit", tc.name, err)
		}
		after, _ := a.g.MarshalBinary()
		if !bytes.Equal(before, after) {
			t.Errorf("%s: refused commit changed the state", tc.name)
		}
	}
}
