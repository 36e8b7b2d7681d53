package mls

import (
	"bytes"
	"errors"
	"testing"
)

// propSamples returns one Proposal of each type, built in code.
func propSamples(t *testing.T) []*Proposal {
	t.Helper()
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := kpNew(t, s)
	return []*Proposal{
		{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}},
		{Type: ProposalUpdate, Update: &UpdateProposal{LeafNode: kp.LeafNode}},
		{Type: ProposalRemove, Remove: &RemoveProposal{Removed: 0x01020304}},
		{Type: ProposalPreSharedKey, PreSharedKey: &PreSharedKeyProposal{PSK: PreSharedKeyID{
			Type: PSKTypeExternal, PSKID: []byte("psk"), Nonce: bytes.Repeat([]byte{1}, 32)}}},
		{Type: ProposalReInit, ReInit: &ReInitProposal{GroupID: []byte("new"), Version: MLS10,
			CipherSuite: MLS_128_DHKEMP256_AES128GCM_SHA256_P256, Extensions: []Extension{{Type: 0xff00, Data: []byte{9}}}}},
		{Type: ProposalExternalInit, ExternalInit: &ExternalInitProposal{KEMOutput: bytes.Repeat([]byte{2}, 32)}},
		{Type: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensionsProposal{
			Extensions: []Extension{{Type: ExtensionExternalSenders, Data: []byte{}}}}},
	}
}

func TestProposalRoundTrip(t *testing.T) {
	for _, p := range propSamples(t) {
		t.Run(p.Type.String(), func(t *testing.T) {
			enc := p.Marshal()
			back, err := ParseProposal(enc)
			if err != nil {
				t.Fatal(err)
			}
			if back.Type != p.Type || !bytes.Equal(back.Marshal(), enc) {
				t.Fatalf("round trip changed the proposal: %x", back.Marshal())
			}
			// Unknown trailing data and truncation are decode errors.
			if _, err := ParseProposal(append(enc, 0)); !errors.Is(err, ErrDecode) {
				t.Fatalf("trailing byte: got %v", err)
			}
			if _, err := ParseProposal(enc[:len(enc)-1]); !errors.Is(err, ErrDecode) {
				t.Fatalf("truncated: got %v", err)
			}
		})
	}
}

func TestProposalUnknownType(t *testing.T) {
	for _, pt := range []uint16{0, 8, 0x0a0a, 0xffff} {
		b := AppendUint16(nil, pt)
		b = AppendOpaque(b, []byte("body"))
		if _, err := ParseProposal(b); !errors.Is(err, ErrDecode) {
			t.Errorf("proposal type %#x: got %v, want ErrDecode", pt, err)
		}
	}
}

func TestCommitRoundTrip(t *testing.T) {
	props := propSamples(t)
	c := &Commit{Proposals: []ProposalOrRef{
		{Type: ProposalOrRefProposal, Proposal: props[2]},
		{Type: ProposalOrRefReference, Reference: bytes.Repeat([]byte{7}, 32)},
	}, Path: &UpdatePath{
		LeafNode: props[1].Update.LeafNode,
		Nodes: []UpdatePathNode{
			{EncryptionKey: []byte{1, 2}, EncryptedPathSecret: []HPKECiphertext{{KEMOutput: []byte{3}, Ciphertext: []byte{4, 5}}}},
			{EncryptionKey: []byte{6}, EncryptedPathSecret: []HPKECiphertext{}},
		},
	}}
	for _, c := range []*Commit{c, {Proposals: c.Proposals}, {Proposals: []ProposalOrRef{}}} {
		enc := c.Marshal()
		back, err := ParseCommit(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Marshal(), enc) || (back.Path == nil) != (c.Path == nil) || len(back.Proposals) != len(c.Proposals) {
			t.Fatalf("commit does not round-trip: %x", enc)
		}
		if c.Path != nil {
			p, err := ParseUpdatePath(c.Path.Marshal())
			if err != nil || !bytes.Equal(p.Marshal(), c.Path.Marshal()) {
				t.Fatalf("UpdatePath does not round-trip: %v", err)
			}
		}
	}
	// ProposalOrRef type 3 and an optional presence byte of 2 are refused.
	bad := AppendVector(nil, func(b []byte) []byte { return append(b, 3, 0) })
	if _, err := ParseCommit(append(bad, 0)); !errors.Is(err, ErrDecode) {
		t.Fatalf("ProposalOrRef type 3: got %v", err)
	}
	if _, err := ParseCommit([]byte{0, 2}); !errors.Is(err, ErrDecode) {
		t.Fatalf("optional presence 2: got %v", err)
	}
}

// TestMLSMessageStrict checks the refusals of the envelope decoder.
func TestMLSMessageStrict(t *testing.T) {
	pm := &PublicMessage{
		Content: FramedContent{GroupID: []byte("g"), Epoch: 1, Sender: MemberSender(3), AuthenticatedData: []byte{},
			ContentType: ContentProposal, Proposal: &Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: 1}}},
		Auth:          FramedContentAuthData{Signature: []byte{1}},
		MembershipTag: []byte{2},
	}
	good := (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}).Marshal()
	if m, err := ParseMLSMessage(good); err != nil || !bytes.Equal(m.Marshal(), good) {
		t.Fatalf("good message: %v", err)
	}
	mutate := func(off int, v byte) []byte {
		b := append([]byte{}, good...)
		b[off] = v
		return b
	}
	// Offsets: version 0-1, wire format 2-3, group_id 4-5, epoch 6-13,
	// sender type 14, leaf 15-18, authenticated_data 19, content type 20.
	for name, b := range map[string][]byte{
		"version 2":        mutate(1, 2),
		"version 0":        mutate(1, 0),
		"wire format 0":    mutate(3, 0),
		"wire format 6":    mutate(3, 6),
		"sender type 0":    mutate(14, 0),
		"sender type 5":    mutate(14, 5),
		"content type 0":   mutate(20, 0),
		"content type 4":   mutate(20, 4),
		"empty":            {},
		"only the version": good[:2],
	} {
		if _, err := ParseMLSMessage(b); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: got %v, want ErrDecode", name, err)
		}
	}
	// AuthenticatedContent only carries the two framed wire formats.
	ac := AuthenticatedContent{WireFormat: WireFormatWelcome, Content: pm.Content, Auth: pm.Auth}
	if _, err := ParseAuthenticatedContent(ac.Marshal()); !errors.Is(err, ErrDecode) {
		t.Errorf("AuthenticatedContent of a welcome: got %v, want ErrDecode", err)
	}
}
