package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestGroupExternalResync(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	// c lost its state: it rejoins from a GroupInfo without the tree (given
	// separately), removing its old leaf in the same commit.
	gi, err := a.g.groupInfo(false, true)
	if err != nil {
		t.Fatal(err)
	}
	giMsg := (&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}).Marshal()
	if _, _, err := JoinExternal(giMsg, c.signer, nil); err == nil {
		t.Fatal("external join without a tree accepted")
	}
	oldLeaf := c.g.OwnLeaf()
	if m, ok := a.g.MemberByIdentity([]byte(c.name)); !ok || m.Leaf != oldLeaf {
		t.Fatalf("MemberByIdentity: %+v %v", m, ok)
	}
	if _, ok := a.g.MemberByIdentity([]byte("nobody")); ok {
		t.Fatal("MemberByIdentity found nobody")
	}
	g, msg, err := JoinExternal(giMsg, c.signer, &ExternalJoinOptions{RatchetTree: a.g.RatchetTree(), Resync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{a, b} {
		r, err := m.g.ProcessMessage(msg)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if len(r.Removed) != 1 || r.Removed[0].Leaf != oldLeaf {
			t.Fatalf("%s: resync removed %+v", m.name, r.Removed)
		}
	}
	c.g = g
	sg.agree()
	sg.talk("after resync")
	// The joiner's own commit echoed back is recognized.
	if r, err := c.g.ProcessMessage(msg); err != nil || !r.OwnCommit {
		t.Fatalf("external commit echo: %v", err)
	}
	// A GroupInfo without external_pub cannot be used.
	gi2, _ := a.g.groupInfo(true, false)
	giMsg2 := (&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi2}).Marshal()
	if _, _, err := JoinExternal(giMsg2, scNewClient(t, "x").signer, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("GroupInfo without external_pub: %v", err)
	}
	// A tampered GroupInfo signature is refused.
	gi3, _ := a.g.groupInfo(true, true)
	gi3.Signature[0] ^= 1
	giMsg3 := (&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi3}).Marshal()
	if _, _, err := JoinExternal(giMsg3, scNewClient(t, "y").signer, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("bad GroupInfo signature: %v", err)
	}
}

func TestGroupWelcomeErrors(t *testing.T) {
	sg := scCreate(t, Config{})
	a := sg.members[0]
	c := scNewClient(t, "joiner")
	kp, priv := scKeyPackage(t, c)
	_, otherPriv := scKeyPackage(t, scNewClient(t, "other"))
	res, err := a.g.AddMembers([]*KeyPackage{kp}, &CommitOptions{OmitRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinFromWelcome(res.Welcome, otherPriv, nil); !errors.Is(err, ErrNoMatchingKeyPackage) {
		t.Fatalf("Welcome for another KeyPackage: %v", err)
	}
	if _, err := JoinFromWelcome(res.Welcome, priv, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("Welcome without tree and none given: %v", err)
	}
	// The tree of the previous epoch does not match the GroupInfo.
	if _, err := JoinFromWelcome(res.Welcome, priv, &JoinOptions{RatchetTree: a.g.RatchetTree()}); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("wrong tree: %v", err)
	}
	if _, err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	g, err := JoinFromWelcome(res.Welcome, priv, &JoinOptions{RatchetTree: a.g.RatchetTree()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), a.g.EpochAuthenticator()) {
		t.Fatal("joiner disagrees")
	}
}

// TestGroupAllSuites runs a short life of a group in every supported suite:
// create, add two, talk, self-update, remove, external join, reload.
func TestGroupAllSuites(t *testing.T) {
	for _, cs := range SupportedSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			newClient := func(name string) *scClient {
				s, err := NewSigner(cs, []byte(name))
				if err != nil {
					t.Fatal(err)
				}
				return &scClient{name: name, signer: s}
			}
			a, b, c := newClient("a"), newClient("b"), newClient("c")
			var err error
			if a.g, err = CreateGroup(cs, nil, a.signer, nil); err != nil {
				t.Fatal(err)
			}
			kb, pb, err := GenerateKeyPackage(cs, b.signer, nil)
			if err != nil {
				t.Fatal(err)
			}
			kc, pc, err := GenerateKeyPackage(cs, c.signer, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.g.AddMembers([]*KeyPackage{kb, kc}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sg := &scGroup{t: t, members: []*scClient{a}}
			sg.commitFrom(a, res)
			if b.g, err = JoinFromWelcome(res.Welcome, pb, nil); err != nil {
				t.Fatal(err)
			}
			if c.g, err = JoinFromWelcome(res.Welcome, pc, nil); err != nil {
				t.Fatal(err)
			}
			sg.members = append(sg.members, b, c)
			sg.agree()
			sg.talk("hi")
			if res, err = b.g.SelfUpdate(nil); err != nil {
				t.Fatal(err)
			}
			sg.commitFrom(b, res)
			sg.remove(c, a)
			gi, err := b.g.GroupInfo()
			if err != nil {
				t.Fatal(err)
			}
			d := newClient("d")
			g, msg, err := JoinExternal(gi, d.signer, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range sg.members {
				if _, err := m.g.ProcessMessage(msg); err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
			}
			d.g = g
			sg.members = append(sg.members, d)
			sg.reload()
			sg.agree()
			sg.talk(fmt.Sprintf("suite %v", cs))
		})
	}
}

func TestPeekMessageAndWelcomeRefs(t *testing.T) {
	sg := scCreate(t, Config{})
	a := sg.members[0]
	c := scNewClient(t, "joiner")
	kp, priv := scKeyPackage(t, c)
	res, err := a.g.AddMembers([]*KeyPackage{kp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, refs, err := WelcomeKeyPackageRefs(res.Welcome)
	ref, _ := priv.Ref()
	if err != nil || cs != scSuite || len(refs) != 1 || !bytes.Equal(refs[0], ref) {
		t.Fatalf("WelcomeKeyPackageRefs: %v %v", err, refs)
	}
	if _, _, err := WelcomeKeyPackageRefs(res.Message); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("refs of a commit: %v", err)
	}
	h, err := PeekMessage(res.Message)
	if err != nil || h.WireFormat != WireFormatPrivateMessage || h.Epoch != 0 || h.ContentType != ContentCommit || !bytes.Equal(h.GroupID, a.g.GroupID()) {
		t.Fatalf("PeekMessage of a commit: %v %+v", err, h)
	}
	h, err = PeekMessage(res.GroupInfo)
	if err != nil || h.WireFormat != WireFormatGroupInfo || h.Epoch != 1 {
		t.Fatalf("PeekMessage of a GroupInfo: %v %+v", err, h)
	}
	if _, err := PeekMessage([]byte{0}); !errors.Is(err, ErrDecode) {
		t.Fatalf("PeekMessage of garbage: %v", err)
	}
}

// TestGroupExternalJoinPSK joins by an external commit that injects an
// external PSK (RFC 9420 §8.4, §12.4.3.2): members that know the PSK follow
// it; a member that lacks it refuses the commit with ErrUnknownPSK and keeps
// its state, and follows once it has the PSK.
func TestGroupExternalJoinPSK(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	pskID, pskSecret := []byte("psk-x"), []byte("external psk secret x")
	a.g.AddPSK(pskID, pskSecret)
	b.g.AddPSK(pskID, pskSecret)
	giMsg, err := a.g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	d := scNewClient(t, "member-ext")
	if _, _, err := JoinExternal(giMsg, d.signer, &ExternalJoinOptions{
		PSKs: []PSK{{ID: pskID, Secret: pskSecret}, {ID: pskID, Secret: pskSecret}},
	}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("the same PSK twice: %v", err)
	}

	// A joiner with the wrong secret builds a commit the members refuse.
	_, bad, err := JoinExternal(giMsg, d.signer, &ExternalJoinOptions{PSKs: []PSK{{ID: pskID, Secret: []byte("wrong")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.ProcessMessage(bad); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("commit with the wrong PSK secret: %v", err)
	}

	g, msg, err := JoinExternal(giMsg, d.signer, &ExternalJoinOptions{PSKs: []PSK{{ID: pskID, Secret: pskSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	// The commit carries the PSK by value with a fresh nonce.
	m, err := ParseMLSMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []PreSharedKeyID
	for _, por := range m.PublicMessage.Content.Commit.Proposals {
		if por.Type == ProposalOrRefProposal && por.Proposal.Type == ProposalPreSharedKey {
			ids = append(ids, por.Proposal.PreSharedKey.PSK)
		}
	}
	if len(ids) != 1 || ids[0].Type != PSKTypeExternal || !bytes.Equal(ids[0].PSKID, pskID) ||
		len(ids[0].Nonce) != a.g.suite.HashSize() {
		t.Fatalf("PreSharedKey proposals in the external commit: %+v", ids)
	}

	// c lacks the PSK: refused, state unchanged.
	before, err := c.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	epoch, auth := c.g.Epoch(), c.g.EpochAuthenticator()
	if _, err := c.g.ProcessMessage(msg); !errors.Is(err, ErrUnknownPSK) {
		t.Fatalf("commit with an unknown PSK: %v", err)
	}
	after, err := c.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if c.g.Epoch() != epoch || !bytes.Equal(c.g.EpochAuthenticator(), auth) || !bytes.Equal(before, after) {
		t.Fatal("a refused commit changed the state")
	}

	for _, m := range []*scClient{a, b} {
		r, err := m.g.ProcessMessage(msg)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if r.Kind != KindCommit || r.NewEpoch != epoch+1 || string(r.Sender.Identity) != d.name {
			t.Fatalf("%s: external commit gave %+v", m.name, r)
		}
	}
	c.g.AddPSK(pskID, pskSecret)
	if _, err := c.g.ProcessMessage(msg); err != nil {
		t.Fatalf("%s with the PSK: %v", c.name, err)
	}
	d.g = g
	sg.members = append(sg.members, d)
	sg.agree()
	sg.talk("after external join with a PSK")

	// The joiner keeps the PSK it was given: it can propose it again.
	prop, err := d.g.ProposeExternalPSK(pskID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{a, b, c} {
		if _, err := m.g.ProcessMessage(prop); err != nil {
			t.Fatalf("%s reading the PSK proposal: %v", m.name, err)
		}
	}
	res, err := a.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.g.ProcessMessage(res.Message); err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*scClient{b, c} {
		if _, err := m.g.ProcessMessage(res.Message); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	sg.agree()
}
