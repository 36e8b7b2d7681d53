package mls

import (
	"bytes"
	"errors"
	"testing"
)

type protectionCase struct {
	CipherSuite             CipherSuite `json:"cipher_suite"`
	GroupID                 hexBytes    `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	TreeHash                hexBytes    `json:"tree_hash"`
	ConfirmedTranscriptHash hexBytes    `json:"confirmed_transcript_hash"`
	SignaturePriv           hexBytes    `json:"signature_priv"`
	SignaturePub            hexBytes    `json:"signature_pub"`
	EncryptionSecret        hexBytes    `json:"encryption_secret"`
	SenderDataSecret        hexBytes    `json:"sender_data_secret"`
	MembershipKey           hexBytes    `json:"membership_key"`
	Proposal                hexBytes    `json:"proposal"`
	ProposalPriv            hexBytes    `json:"proposal_priv"`
	ProposalPub             hexBytes    `json:"proposal_pub"`
	Commit                  hexBytes    `json:"commit"`
	CommitPriv              hexBytes    `json:"commit_priv"`
	CommitPub               hexBytes    `json:"commit_pub"`
	Application             hexBytes    `json:"application"`
	ApplicationPriv         hexBytes    `json:"application_priv"`
}

// protectionSender is the sender of every message-protection vector: leaf 1
// of a two-member group.
const protectionSender LeafIndex = 1

func (tc *protectionCase) groupContext() *GroupContext {
	return &GroupContext{
		Version:                 MLS10,
		CipherSuite:             tc.CipherSuite,
		GroupID:                 tc.GroupID,
		Epoch:                   tc.Epoch,
		TreeHash:                tc.TreeHash,
		ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
		Extensions:              []Extension{},
	}
}

// content returns the FramedContent for one payload of the case.
func (tc *protectionCase) content(t *testing.T, ct ContentType) *FramedContent {
	t.Helper()
	c := &FramedContent{
		GroupID:           tc.GroupID,
		Epoch:             tc.Epoch,
		Sender:            MemberSender(protectionSender),
		AuthenticatedData: []byte{},
		ContentType:       ct,
	}
	var err error
	switch ct {
	case ContentApplication:
		c.ApplicationData = tc.Application
	case ContentProposal:
		c.Proposal, err = ParseProposal(tc.Proposal)
	case ContentCommit:
		c.Commit, err = ParseCommit(tc.Commit)
	}
	if err != nil {
		t.Fatalf("payload %v: %v", ct, err)
	}
	return c
}

// payload re-encodes the content body, for comparison with the vector.
func protectionPayload(c *FramedContent) []byte {
	switch c.ContentType {
	case ContentApplication:
		return c.ApplicationData
	case ContentProposal:
		return c.Proposal.Marshal()
	default:
		return c.Commit.Marshal()
	}
}

func (tc *protectionCase) want(ct ContentType) []byte {
	switch ct {
	case ContentApplication:
		return tc.Application
	case ContentProposal:
		return tc.Proposal
	default:
		return tc.Commit
	}
}

// checkUnprotected checks a received content against the vector's payload
// and verifies its signature.
func (tc *protectionCase) checkUnprotected(t *testing.T, s Suite, ac *AuthenticatedContent, ct ContentType, what string) {
	t.Helper()
	gc := tc.groupContext()
	c := &ac.Content
	switch {
	case c.ContentType != ct:
		t.Fatalf("%s: content type %v, want %v", what, c.ContentType, ct)
	case !bytes.Equal(c.GroupID, tc.GroupID) || c.Epoch != tc.Epoch:
		t.Fatalf("%s: group %x epoch %d, want %x %d", what, c.GroupID, c.Epoch, tc.GroupID, tc.Epoch)
	case c.Sender != MemberSender(protectionSender):
		t.Fatalf("%s: sender %v, want member(1)", what, c.Sender)
	}
	if got := protectionPayload(c); !bytes.Equal(got, tc.want(ct)) {
		t.Fatalf("%s: payload\n got %x\nwant %x", what, got, tc.want(ct))
	}
	if err := ac.VerifySignature(s, tc.SignaturePub, gc); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	// The signature covers the content: a changed byte must not verify.
	bad := *ac
	bad.Content.AuthenticatedData = []byte("x")
	if err := bad.VerifySignature(s, tc.SignaturePub, gc); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("%s: tampered content: got %v, want ErrInvalidSignature", what, err)
	}
}

func (tc *protectionCase) unprotectPublic(t *testing.T, s Suite, raw []byte, ct ContentType, what string) {
	t.Helper()
	m, err := ParseMLSMessage(raw)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if m.WireFormat != WireFormatPublicMessage {
		t.Fatalf("%s: wire format %v", what, m.WireFormat)
	}
	ac, err := UnprotectPublic(s, m.PublicMessage, tc.MembershipKey, tc.groupContext())
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	tc.checkUnprotected(t, s, ac, ct, what)

	// A wrong membership tag is refused.
	m.PublicMessage.MembershipTag = append([]byte{}, m.PublicMessage.MembershipTag...)
	m.PublicMessage.MembershipTag[0] ^= 1
	if _, err := UnprotectPublic(s, m.PublicMessage, tc.MembershipKey, tc.groupContext()); !errors.Is(err, ErrInvalidTag) {
		t.Fatalf("%s: bad membership tag: got %v, want ErrInvalidTag", what, err)
	}
}

func (tc *protectionCase) unprotectPrivate(t *testing.T, s Suite, raw []byte, ct ContentType, what string) {
	t.Helper()
	m, err := ParseMLSMessage(raw)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if m.WireFormat != WireFormatPrivateMessage {
		t.Fatalf("%s: wire format %v", what, m.WireFormat)
	}
	st := NewSecretTree(s, tc.EncryptionSecret, 2)
	ac, err := UnprotectPrivate(s, m.PrivateMessage, st, tc.SenderDataSecret)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	tc.checkUnprotected(t, s, ac, ct, what)

	// The same message again needs a consumed generation.
	if _, err := UnprotectPrivate(s, m.PrivateMessage, st, tc.SenderDataSecret); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("%s: replay: got %v, want ErrGenerationConsumed", what, err)
	}
	// A flipped ciphertext bit fails to decrypt.
	bad := *m.PrivateMessage
	bad.Ciphertext = append([]byte{}, bad.Ciphertext...)
	bad.Ciphertext[len(bad.Ciphertext)-1] ^= 1
	if _, err := UnprotectPrivate(s, &bad, NewSecretTree(s, tc.EncryptionSecret, 2), tc.SenderDataSecret); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("%s: tampered ciphertext: got %v, want ErrDecrypt", what, err)
	}
}

func TestVectorsMessageProtection(t *testing.T) {
	runVectors(t, "message-protection.json", func(t *testing.T, tc *protectionCase) {
		s, err := LookupSuite(tc.CipherSuite)
		if err != nil {
			t.Skipf("suite %v: %v", tc.CipherSuite, err)
		}
		gc := tc.groupContext()

		// The given messages.
		tc.unprotectPublic(t, s, tc.ProposalPub, ContentProposal, "proposal_pub")
		tc.unprotectPublic(t, s, tc.CommitPub, ContentCommit, "commit_pub")
		tc.unprotectPrivate(t, s, tc.ProposalPriv, ContentProposal, "proposal_priv")
		tc.unprotectPrivate(t, s, tc.CommitPriv, ContentCommit, "commit_priv")
		tc.unprotectPrivate(t, s, tc.ApplicationPriv, ContentApplication, "application_priv")

		// Our own, round-tripped through the wire encoding.
		for _, ct := range []ContentType{ContentApplication, ContentProposal, ContentCommit} {
			for _, wf := range []WireFormat{WireFormatPublicMessage, WireFormatPrivateMessage} {
				what := wf.String() + "/" + ct.String()
				ac, err := SignFramedContent(s, tc.SignaturePriv, wf, tc.content(t, ct), gc)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if ct == ContentCommit {
					ac.Auth.ConfirmationTag = ConfirmationTag(s, tc.MembershipKey, tc.ConfirmedTranscriptHash)
				}
				msg := &MLSMessage{Version: MLS10, WireFormat: wf}
				if wf == WireFormatPublicMessage {
					msg.PublicMessage, err = ProtectPublic(s, ac, tc.MembershipKey, gc)
					if ct == ContentApplication {
						if !errors.Is(err, ErrInvalidMessage) {
							t.Fatalf("%s: got %v, want ErrInvalidMessage", what, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					tc.unprotectPublic(t, s, msg.Marshal(), ct, what)
					continue
				}
				sender := NewSecretTree(s, tc.EncryptionSecret, 2)
				msg.PrivateMessage, err = ProtectPrivate(s, ac, sender, tc.SenderDataSecret, 17)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				tc.unprotectPrivate(t, s, msg.Marshal(), ct, what)
			}
		}

		// Application data that arrives as a PublicMessage is refused even
		// with a valid membership tag.
		ac, err := SignFramedContent(s, tc.SignaturePriv, WireFormatPublicMessage, tc.content(t, ContentApplication), gc)
		if err != nil {
			t.Fatal(err)
		}
		pm := &PublicMessage{Content: ac.Content, Auth: ac.Auth, MembershipTag: membershipTag(s, tc.MembershipKey, ac, gc)}
		raw := (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}).Marshal()
		m, err := ParseMLSMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnprotectPublic(s, m.PublicMessage, tc.MembershipKey, gc); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("application PublicMessage: got %v, want ErrInvalidMessage", err)
		}
	})
}

// framingTestApplication signs application data from leaf sender for a
// PrivateMessage in a suite-1 group "g" at epoch, with a fresh signature
// key. It returns the suite, the signature public key, the group context
// and the signed content.
func framingTestApplication(t *testing.T, epoch uint64, sender LeafIndex, ad, data []byte) (Suite, []byte, *GroupContext, *AuthenticatedContent) {
	t.Helper()
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	gc := &GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: []byte("g"), Epoch: epoch,
		TreeHash: []byte{}, ConfirmedTranscriptHash: []byte{}, Extensions: []Extension{}}
	content := &FramedContent{GroupID: gc.GroupID, Epoch: gc.Epoch, Sender: MemberSender(sender),
		AuthenticatedData: ad, ContentType: ContentApplication, ApplicationData: data}
	ac, err := SignFramedContent(s, priv, WireFormatPrivateMessage, content, gc)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub, gc, ac
}

// TestPrivateMessagePadding checks that padding is zeros on the wire and
// that a plaintext with a non-zero padding byte is refused as malformed.
func TestPrivateMessagePadding(t *testing.T) {
	s, pub, gc, ac := framingTestApplication(t, 3, 0, []byte("ad"), []byte("hello"))
	secret := bytes.Repeat([]byte{7}, s.HashSize())
	sds := bytes.Repeat([]byte{9}, s.HashSize())

	for _, padding := range []int{0, 1, 100} {
		pm, err := ProtectPrivate(s, ac, NewSecretTree(s, secret, 1), sds, padding)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnprotectPrivate(s, pm, NewSecretTree(s, secret, 1), sds)
		if err != nil {
			t.Fatalf("padding %d: %v", padding, err)
		}
		if !bytes.Equal(got.Content.ApplicationData, []byte("hello")) || !bytes.Equal(got.Content.AuthenticatedData, []byte("ad")) {
			t.Fatalf("padding %d: got %q / %q", padding, got.Content.ApplicationData, got.Content.AuthenticatedData)
		}
		if err := got.VerifySignature(s, pub, gc); err != nil {
			t.Fatalf("padding %d: %v", padding, err)
		}
	}
	if _, err := ProtectPrivate(s, ac, NewSecretTree(s, secret, 1), sds, -1); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("negative padding: got %v, want ErrInvalidMessage", err)
	}

	pt := ac.Content.appendBody(nil)
	pt = ac.Auth.append(pt, ContentApplication)
	pt = append(pt, 0, 0, 1, 0)
	pm := &PrivateMessage{GroupID: gc.GroupID, Epoch: gc.Epoch, ContentType: ContentApplication, AuthenticatedData: []byte("ad")}
	if err := pm.seal(s, NewSecretTree(s, secret, 1), sds, 0, pt); err != nil {
		t.Fatal(err)
	}
	if _, err := UnprotectPrivate(s, pm, NewSecretTree(s, secret, 1), sds); !errors.Is(err, ErrDecode) {
		t.Fatalf("non-zero padding: got %v, want ErrDecode", err)
	}
}

// TestPublicMessageChecks covers the refusals of UnprotectPublic that the
// vectors do not: wrong epoch or group, and sender types that may not send
// the content.
func TestPublicMessageChecks(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{5}, s.HashSize())
	gc := &GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: []byte("group"), Epoch: 9,
		TreeHash: []byte{1}, ConfirmedTranscriptHash: []byte{2}, Extensions: []Extension{}}
	remove := &Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: 2}}
	content := FramedContent{GroupID: gc.GroupID, Epoch: gc.Epoch, Sender: MemberSender(0),
		AuthenticatedData: []byte{}, ContentType: ContentProposal, Proposal: remove}
	ac, err := SignFramedContent(s, priv, WireFormatPublicMessage, &content, gc)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := ProtectPublic(s, ac, key, gc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := UnprotectPublic(s, pm, key, gc); err != nil {
		t.Fatal(err)
	} else if err := got.VerifySignature(s, pub, gc); err != nil {
		t.Fatal(err)
	}

	other := *gc
	other.Epoch = 10
	if _, err := UnprotectPublic(s, pm, key, &other); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("wrong epoch: got %v, want ErrInvalidMessage", err)
	}
	other = *gc
	other.GroupID = []byte("other")
	if _, err := UnprotectPublic(s, pm, key, &other); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("wrong group: got %v, want ErrInvalidMessage", err)
	}
	// The signature covers the group context: another epoch's does not verify.
	other = *gc
	other.TreeHash = []byte{3}
	if got, err := UnprotectPublic(s, pm, key, gc); err != nil {
		t.Fatal(err)
	} else if err := got.VerifySignature(s, pub, &other); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("other context: got %v, want ErrInvalidSignature", err)
	}

	// An external sender may send proposals (no membership tag) but not
	// commits; a new_member_proposal sender only Add proposals.
	ext := content
	ext.Sender = Sender{Type: SenderExternal, SenderIndex: 0}
	eac, err := SignFramedContent(s, priv, WireFormatPublicMessage, &ext, nil)
	if err != nil {
		t.Fatal(err)
	}
	epm, err := ProtectPublic(s, eac, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if epm.MembershipTag != nil {
		t.Fatal("external sender got a membership tag")
	}
	if got, err := UnprotectPublic(s, epm, key, gc); err != nil {
		t.Fatal(err)
	} else if err := got.VerifySignature(s, pub, nil); err != nil {
		t.Fatal(err)
	}
	ext.ContentType, ext.Proposal, ext.Commit = ContentCommit, nil, &Commit{Proposals: []ProposalOrRef{}}
	if _, err := SignFramedContent(s, priv, WireFormatPublicMessage, &ext, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("external commit: got %v, want ErrInvalidMessage", err)
	}
	nmp := content
	nmp.Sender = Sender{Type: SenderNewMemberProposal}
	if _, err := SignFramedContent(s, priv, WireFormatPublicMessage, &nmp, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("new_member_proposal remove: got %v, want ErrInvalidMessage", err)
	}
	// A member's content cannot be signed without the group context.
	if _, err := SignFramedContent(s, priv, WireFormatPublicMessage, &content, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("member without context: got %v, want ErrInvalidMessage", err)
	}
}

// TestPrivateMessageReuseGuard checks that the reuse guard changes the
// content nonce: the same content at the same generation encrypts
// differently each time, and a receiver given another guard cannot decrypt.
func TestPrivateMessageReuseGuard(t *testing.T) {
	s, _, _, ac := framingTestApplication(t, 1, 1, []byte{}, []byte("same"))
	secret := bytes.Repeat([]byte{3}, s.HashSize())
	sds := bytes.Repeat([]byte{4}, s.HashSize())
	a, err := ProtectPrivate(s, ac, NewSecretTree(s, secret, 2), sds, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ProtectPrivate(s, ac, NewSecretTree(s, secret, 2), sds, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Fatal("same generation, same ciphertext: the reuse guard is not applied")
	}
	for _, m := range []*PrivateMessage{a, b} {
		if _, err := UnprotectPrivate(s, m, NewSecretTree(s, secret, 2), sds); err != nil {
			t.Fatal(err)
		}
	}

	// Re-encrypt a's sender data with a different guard.
	key, nonce, err := SenderDataKeyNonce(s, sds, a.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Open(key, nonce, a.senderDataAAD(), a.EncryptedSenderData)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := parseSenderData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if sd.leaf != 1 || sd.generation != 0 {
		t.Fatalf("sender data leaf %d generation %d, want 1, 0", sd.leaf, sd.generation)
	}
	sd.reuseGuard[0] ^= 0x80
	forged := *a
	if forged.EncryptedSenderData, err = s.Seal(key, nonce, a.senderDataAAD(), sd.append(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := UnprotectPrivate(s, &forged, NewSecretTree(s, secret, 2), sds); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other reuse guard: got %v, want ErrDecrypt", err)
	}
	// A sender leaf outside the tree is refused.
	sd.reuseGuard[0] ^= 0x80
	sd.leaf = 5
	if forged.EncryptedSenderData, err = s.Seal(key, nonce, a.senderDataAAD(), sd.append(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := UnprotectPrivate(s, &forged, NewSecretTree(s, secret, 2), sds); !errors.Is(err, ErrLeafOutOfRange) {
		t.Fatalf("leaf 5 of 2: got %v, want ErrLeafOutOfRange", err)
	}
	// Sender data bound to another epoch does not open.
	other := *a
	other.Epoch++
	if _, err := UnprotectPrivate(s, &other, NewSecretTree(s, secret, 2), sds); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("changed epoch: got %v, want ErrDecrypt", err)
	}
}
