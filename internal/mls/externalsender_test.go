package mls

import (
	"bytes"
	"errors"
	"testing"
)

// extSender is an external sender: a signer outside the group.
func extSender(t testing.TB, name string) (*Signer, ExternalSender) {
	t.Helper()
	s, err := NewSigner(scSuite, []byte(name))
	if err != nil {
		t.Fatal(err)
	}
	return s, ExternalSender{SignatureKey: bytes.Clone(s.SignaturePub), Credential: s.Credential}
}

// extGroup builds a three-member group whose GroupContext gains an
// external_senders extension with ds through a GroupContextExtensions
// commit, and returns it with ds's index.
func extGroup(t *testing.T) (*scGroup, *Signer, uint32) {
	t.Helper()
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a := sg.members[0]
	ds, entry := extSender(t, "delivery-service")
	exts, idx, err := WithExternalSender(a.g.Extensions(), entry)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.g.UpdateGroupContextExtensions(exts, nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	sg.agree()
	for _, m := range sg.members {
		got, err := FindExternalSender(m.g.Extensions(), ds.SignaturePub)
		if err != nil || got != idx {
			t.Fatalf("%s: external sender at %d (%v), want %d", m.name, got, err, idx)
		}
	}
	if name, ok := a.g.Extension(scNameExt); !ok || string(name) != "friends" {
		t.Fatalf("the group name extension was lost: %q", name)
	}
	for _, m := range sg.members {
		m.g.SetPolicy(keepAll)
	}
	return sg, ds, idx
}

// keepAll is a Policy that keeps external senders' proposals too.
var keepAll = Policy{Proposals: KeepAllProposals}

// deliverProposal has every member of sg process an external proposal and
// checks what they report.
func deliverProposal(t *testing.T, sg *scGroup, msg []byte, want ProposalType, ds *Signer) {
	t.Helper()
	for _, m := range sg.members {
		r, err := m.g.ProcessMessage(msg)
		if err != nil {
			t.Fatalf("%s: external proposal refused: %v", m.name, err)
		}
		if r.Kind != KindProposal || r.SenderType != SenderExternal || r.Proposal.Type != want {
			t.Fatalf("%s: got %v from %v, proposal %v", m.name, r.Kind, r.SenderType, r.Proposal.Type)
		}
		if !bytes.Equal(r.Sender.SignatureKey, ds.SignaturePub) || string(r.Sender.Identity) != "delivery-service" {
			t.Fatalf("%s: sender reported as %q", m.name, r.Sender.Identity)
		}
	}
}

func TestExternalSenderAddAndRemove(t *testing.T) {
	sg, ds, idx := extGroup(t)
	a, b, c := sg.members[0], sg.members[1], sg.members[2]

	// The delivery service adds d, knowing only the GroupContext.
	d := scNewClient(t, "member-d")
	kp, priv := scKeyPackage(t, d)
	gc := cloneGroupContext(&a.g.ctx)
	msg, err := ExternalProposal(&gc, idx, ds, &Proposal{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}}, []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ParseMLSMessage(msg); err != nil || m.PublicMessage.MembershipTag != nil {
		t.Fatalf("external proposal: %v, membership tag %x", err, m.PublicMessage.MembershipTag)
	}
	deliverProposal(t, sg, msg, ProposalAdd, ds)
	// A member that stores and restores its state keeps the proposal.
	st, err := b.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b.g, err = UnmarshalGroupWithPolicy(st, keepAll); err != nil {
		t.Fatal(err)
	}
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 1 || res.Welcome == nil {
		t.Fatalf("commit of the external add added %d", len(res.Added))
	}
	sg.commitFrom(a, res)
	if d.g, err = JoinFromWelcome(res.Welcome, priv, &JoinOptions{Policy: keepAll}); err != nil {
		t.Fatal(err)
	}
	sg.members = append(sg.members, d)
	sg.agree()

	// The delivery service removes b; c commits it.
	gc = cloneGroupContext(&c.g.ctx)
	msg, err = ExternalProposal(&gc, idx, ds, &Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: b.g.OwnLeaf()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, sg, msg, ProposalRemove, ds)
	res, err = c.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || !bytes.Equal(res.Removed[0].Identity, []byte(b.name)) {
		t.Fatalf("commit of the external remove removed %v", res.Removed)
	}
	if _, err := c.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{a, d} {
		if _, err := m.g.ProcessMessage(res.Message); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	r, err := b.g.ProcessMessage(res.Message)
	if err != nil || !r.SelfRemoved {
		t.Fatalf("removed member: %+v, %v", r, err)
	}
	sg.members = []*scClient{a, c, d}
	sg.agree()
	if len(a.g.Members()) != 3 {
		t.Fatalf("%d members left", len(a.g.Members()))
	}
}

// TestExternalSenderAtCreation: a group created with external_senders
// accepts a PSK proposal from it by reference in a commit.
func TestExternalSenderAtCreation(t *testing.T) {
	ds, entry := extSender(t, "delivery-service")
	a := scNewClient(t, "member-0")
	g, err := CreateGroup(scSuite, nil, a.signer, &CreateOptions{
		Extensions: []Extension{{Type: scNameExt, Data: []byte("friends")}, ExternalSendersExtension([]ExternalSender{entry})},
		Config:     Config{PublicHandshake: true},
		Policy:     keepAll,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.g = g
	sg := &scGroup{t: t, members: []*scClient{a}, next: 1}
	sg.add(a, 1, false)
	b := sg.members[1]
	b.g.SetPolicy(keepAll)
	psk := []byte("shared psk")
	for _, m := range sg.members {
		m.g.AddPSK([]byte("psk-id"), psk)
	}
	p, err := externalPSKProposal(a.g.suite, []byte("psk-id"))
	if err != nil {
		t.Fatal(err)
	}
	gc := cloneGroupContext(&b.g.ctx)
	msg, err := ExternalProposal(&gc, 0, ds, &p, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, sg, msg, ProposalPreSharedKey, ds)
	res, err := b.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMLSMessage(res.Message)
	if err != nil {
		t.Fatal(err)
	}
	props := m.PublicMessage.Content.Commit.Proposals
	if len(props) != 1 || props[0].Type != ProposalOrRefReference {
		t.Fatalf("commit covers %d proposals, want the external PSK by reference", len(props))
	}
	sg.commitFrom(b, res)
	sg.agree()
}

// rawExternal builds a PublicMessage from sender type external without the
// sending-side checks, signed with priv, for the refusal tests.
func rawExternal(t *testing.T, gc *GroupContext, idx uint32, priv []byte, content FramedContent) []byte {
	t.Helper()
	s, err := LookupSuite(gc.CipherSuite)
	if err != nil {
		t.Fatal(err)
	}
	content.GroupID = bytes.Clone(gc.GroupID)
	content.Epoch = gc.Epoch
	content.Sender = Sender{Type: SenderExternal, SenderIndex: idx}
	if content.AuthenticatedData == nil {
		content.AuthenticatedData = []byte{}
	}
	sig, err := SignWithLabel(s, priv, "FramedContentTBS", appendFramedContentTBS(nil, WireFormatPublicMessage, &content, gc))
	if err != nil {
		t.Fatal(err)
	}
	auth := FramedContentAuthData{Signature: sig}
	if content.ContentType == ContentCommit {
		auth.ConfirmationTag = make([]byte, s.HashSize())
	}
	m := &MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: &PublicMessage{Content: content, Auth: auth}}
	return m.Marshal()
}

func TestExternalSenderRefusals(t *testing.T) {
	sg, ds, idx := extGroup(t)
	a, b := sg.members[0], sg.members[1]
	other, _ := extSender(t, "impostor")
	kp, _ := scKeyPackage(t, scNewClient(t, "joiner"))
	add := &Proposal{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}}
	gc := cloneGroupContext(&b.g.ctx)

	plain := scCreate(t, Config{})
	plainGC := cloneGroupContext(&plain.members[0].g.ctx)

	update := &Proposal{Type: ProposalUpdate, Update: &UpdateProposal{LeafNode: *a.g.tree.LeafNode(a.g.self).Clone()}}

	cases := []struct {
		name  string
		group *Group
		msg   []byte
		want  []error
	}{
		{"bad signature", b.g, rawExternal(t, &gc, idx, other.SignaturePriv,
			FramedContent{ContentType: ContentProposal, Proposal: add}), []error{ErrInvalidMessage, ErrInvalidSignature}},
		{"unknown sender index", b.g, rawExternal(t, &gc, idx+1, ds.SignaturePriv,
			FramedContent{ContentType: ContentProposal, Proposal: add}), []error{ErrInvalidMessage, ErrUnknownExternalSender}},
		{"no external_senders", plain.members[0].g, rawExternal(t, &plainGC, 0, ds.SignaturePriv,
			FramedContent{ContentType: ContentProposal, Proposal: add}), []error{ErrInvalidMessage, ErrNoExternalSenders}},
		{"update proposal", b.g, rawExternal(t, &gc, idx, ds.SignaturePriv,
			FramedContent{ContentType: ContentProposal, Proposal: update}), []error{ErrInvalidMessage, ErrExternalSenderContent}},
		{"commit", b.g, rawExternal(t, &gc, idx, ds.SignaturePriv,
			FramedContent{ContentType: ContentCommit, Commit: &Commit{}}), []error{ErrInvalidMessage, ErrExternalSenderContent}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := tc.group.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			_, err = tc.group.ProcessMessage(tc.msg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Fatalf("error %v does not match %v", err, w)
				}
			}
			after, err := tc.group.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("refused message changed the state")
			}
		})
	}

	// The sending side refuses the same things.
	if _, err := ExternalProposal(&gc, idx, ds, update, nil); !errors.Is(err, ErrExternalSenderContent) {
		t.Fatalf("external Update: %v", err)
	}
	if _, err := ExternalProposal(&gc, idx+1, ds, add, nil); !errors.Is(err, ErrUnknownExternalSender) {
		t.Fatalf("unknown index: %v", err)
	}
	if _, err := ExternalProposal(&gc, idx, other, add, nil); !errors.Is(err, ErrUnknownExternalSender) {
		t.Fatalf("another key at the index: %v", err)
	}
	if _, err := ExternalProposal(&plainGC, 0, ds, add, nil); !errors.Is(err, ErrNoExternalSenders) {
		t.Fatalf("group without external senders: %v", err)
	}
	// The right message is still accepted after all the refusals.
	good, err := ExternalProposal(&gc, idx, ds, add, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.g.ProcessMessage(good); err != nil {
		t.Fatal(err)
	}
}

func TestExternalSendersExtensionValidation(t *testing.T) {
	_, good := extSender(t, "ds")
	signer := scNewClient(t, "creator").signer
	bad := map[string][]byte{
		"garbage":        {0xff},
		"trailing bytes": append(AppendExternalSenders(nil, []ExternalSender{good}), 0),
		"empty key":      AppendExternalSenders(nil, []ExternalSender{{SignatureKey: []byte{}, Credential: good.Credential}}),
		"short key":      AppendExternalSenders(nil, []ExternalSender{{SignatureKey: good.SignatureKey[:16], Credential: good.Credential}}),
		"empty identity": AppendExternalSenders(nil, []ExternalSender{{SignatureKey: good.SignatureKey, Credential: NewBasicCredential(nil)}}),
	}
	for name, data := range bad {
		_, err := CreateGroup(scSuite, nil, signer, &CreateOptions{Extensions: []Extension{{Type: ExtensionExternalSenders, Data: data}}})
		if !errors.Is(err, ErrInvalidExternalSenders) {
			t.Errorf("%s: CreateGroup gave %v", name, err)
		}
	}
	// A GroupContextExtensions commit with a bad list is refused and the
	// group stays as it was.
	sg := scCreate(t, Config{})
	a := sg.members[0]
	before, _ := a.g.MarshalBinary()
	_, err := a.g.UpdateGroupContextExtensions([]Extension{{Type: ExtensionExternalSenders, Data: bad["short key"]}}, nil)
	if !errors.Is(err, ErrInvalidExternalSenders) {
		t.Fatalf("GroupContextExtensions with a bad list: %v", err)
	}
	if after, _ := a.g.MarshalBinary(); !bytes.Equal(before, after) {
		t.Fatal("refused commit changed the state")
	}
	// An empty list is well formed.
	if _, err := CreateGroup(scSuite, nil, signer, &CreateOptions{Extensions: []Extension{ExternalSendersExtension(nil)}}); err != nil {
		t.Fatal(err)
	}
}

// extSendersSeeds are real encodings of external_senders lists, for the
// fuzz targets.
func extSendersSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	var list []ExternalSender
	for _, cs := range []CipherSuite{MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, MLS_128_DHKEMP256_AES128GCM_SHA256_P256} {
		s, err := NewSigner(cs, []byte("ds"))
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, ExternalSender{SignatureKey: s.SignaturePub, Credential: s.Credential})
		seeds = append(seeds, AppendExternalSenders(nil, list))
	}
	x509 := ExternalSender{SignatureKey: []byte{1, 2, 3}, Credential: Credential{Type: CredentialX509, Certificates: [][]byte{{0x30, 0x03}, {0x30}}}}
	seeds = append(seeds, AppendExternalSenders(nil, append(list, x509)), AppendExternalSenders(nil, nil))
	return seeds
}

func FuzzExternalSenders(f *testing.F) {
	for _, s := range extSendersSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseExternalSenders, func(v []ExternalSender) []byte { return AppendExternalSenders(nil, v) })
		if s, err := LookupSuite(scSuite); err == nil {
			if err := checkExternalSenders(s, b); err != nil && !errors.Is(err, ErrInvalidExternalSenders) {
				t.Fatalf("untyped error: %v", err)
			}
		}
	})
}

// FuzzProcessExternalProposal feeds arbitrary bytes, seeded with real
// external proposals, to a member of a group with an external sender: a
// refused message must leave the state as it was.
func FuzzProcessExternalProposal(f *testing.F) {
	sg := scCreate(f, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	ds, entry := extSender(f, "delivery-service")
	exts, idx, err := WithExternalSender(a.g.Extensions(), entry)
	if err != nil {
		f.Fatal(err)
	}
	res, err := a.g.UpdateGroupContextExtensions(exts, nil)
	if err != nil {
		f.Fatal(err)
	}
	sg.commitFrom(a, res)
	gc := cloneGroupContext(&b.g.ctx)
	kp, _ := scKeyPackage(f, scNewClient(f, "joiner"))
	p, err := externalPSKProposal(a.g.suite, []byte("psk"))
	if err != nil {
		f.Fatal(err)
	}
	var msgs [][]byte
	for _, prop := range []*Proposal{
		{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}},
		{Type: ProposalRemove, Remove: &RemoveProposal{Removed: a.g.OwnLeaf()}},
		&p,
		{Type: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensionsProposal{Extensions: exts}},
	} {
		msg, err := ExternalProposal(&gc, idx, ds, prop, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
		msgs = append(msgs, msg)
	}
	state, err := b.g.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	for i, msg := range msgs {
		g, err := UnmarshalGroupWithPolicy(state, keepAll)
		if err != nil {
			f.Fatal(err)
		}
		if r, err := g.ProcessMessage(msg); err != nil || r.SenderType != SenderExternal {
			f.Fatalf("seed %d refused: %v", i, err)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		g, err := UnmarshalGroupWithPolicy(state, keepAll)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.ProcessMessage(msg); err != nil {
			if !typedGroupError(err) {
				t.Fatalf("untyped error: %v", err)
			}
			after, err2 := g.MarshalBinary()
			if err2 != nil {
				t.Fatal(err2)
			}
			if !bytes.Equal(after, state) {
				t.Fatalf("refused message (%v) changed the state", err)
			}
		}
	})
}
