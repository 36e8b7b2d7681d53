package mls

import (
	"bytes"
	"crypto/hmac"
	"fmt"
)

// This file is content authentication (RFC 9420 §6.1) and the PublicMessage
// protection of §6.2: a signature over FramedContentTBS and, for members, a
// membership tag over AuthenticatedContentTBM.

// appendFramedContentTBS appends FramedContentTBS. The group context is
// included for member and new_member_commit senders, whose gc must be set.
func appendFramedContentTBS(b []byte, wf WireFormat, c *FramedContent, gc *GroupContext) []byte {
	b = AppendUint16(b, uint16(MLS10))
	b = AppendUint16(b, uint16(wf))
	b = c.append(b)
	switch c.Sender.Type {
	case SenderMember, SenderNewMemberCommit:
		b = gc.append(b)
	}
	return b
}

// needsGroupContext reports whether content from t is signed over the group
// context.
func needsGroupContext(t SenderType) bool {
	return t == SenderMember || t == SenderNewMemberCommit
}

// checkSenderContent applies the rules of RFC 9420 §6.1 that tie a sender
// type to the content it may send.
func checkSenderContent(c *FramedContent) error {
	switch c.Sender.Type {
	case SenderMember:
		return nil
	case SenderExternal:
		return checkExternalContent(c)
	case SenderNewMemberProposal:
		if c.ContentType != ContentProposal || c.Proposal == nil || c.Proposal.Type != ProposalAdd {
			return fmt.Errorf("%w: new_member_proposal sender must send an add proposal", ErrInvalidMessage)
		}
	case SenderNewMemberCommit:
		if c.ContentType != ContentCommit {
			return fmt.Errorf("%w: new_member_commit sender sent %v content", ErrInvalidMessage, c.ContentType)
		}
	default:
		return fmt.Errorf("%w: unknown sender type %v", ErrInvalidMessage, c.Sender.Type)
	}
	return nil
}

// SignFramedContent signs content for travel in wire format wf and returns the
// AuthenticatedContent (RFC 9420 §6.1). gc is the group context of the
// current epoch; it may be nil only for external and new_member_proposal
// senders. For a commit, the caller sets Auth.ConfirmationTag afterwards,
// once the new epoch's key schedule is known (see ConfirmedTranscriptHash).
func SignFramedContent(s Suite, signPriv []byte, wf WireFormat, content *FramedContent, gc *GroupContext) (*AuthenticatedContent, error) {
	return signFramedContent(func(label string, tbs []byte) ([]byte, error) { return SignWithLabel(s, signPriv, label, tbs) }, wf, content, gc)
}

// signFramedContent is SignFramedContent with the signature made by sign
// (SignWithLabel with the sender's key).
func signFramedContent(sign func(label string, content []byte) ([]byte, error), wf WireFormat, content *FramedContent, gc *GroupContext) (*AuthenticatedContent, error) {
	if wf != WireFormatPublicMessage && wf != WireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: wire format %v cannot carry framed content", ErrInvalidMessage, wf)
	}
	if needsGroupContext(content.Sender.Type) && gc == nil {
		return nil, fmt.Errorf("%w: %v sender needs the group context", ErrInvalidMessage, content.Sender.Type)
	}
	if err := checkSenderContent(content); err != nil {
		return nil, err
	}
	sig, err := sign("FramedContentTBS", appendFramedContentTBS(nil, wf, content, gc))
	if err != nil {
		return nil, fmt.Errorf("signing content: %w", err)
	}
	return &AuthenticatedContent{WireFormat: wf, Content: *content, Auth: FramedContentAuthData{Signature: sig}}, nil
}

// VerifySignature checks the content signature against pub, the signature
// key of the sender (RFC 9420 §6.1: the leaf's key for a member, the
// external_senders entry for an external sender, the UpdatePath leaf for a
// new_member_commit, the KeyPackage leaf for a new_member_proposal). gc is
// the group context of the epoch the content belongs to. A bad signature
// matches ErrInvalidSignature.
func (ac *AuthenticatedContent) VerifySignature(s Suite, pub []byte, gc *GroupContext) error {
	if needsGroupContext(ac.Content.Sender.Type) && gc == nil {
		return fmt.Errorf("%w: %v sender needs the group context", ErrInvalidMessage, ac.Content.Sender.Type)
	}
	tbs := appendFramedContentTBS(nil, ac.WireFormat, &ac.Content, gc)
	if err := VerifyWithLabel(s, pub, "FramedContentTBS", tbs, ac.Auth.Signature); err != nil {
		return fmt.Errorf("content from %v: %w", ac.Content.Sender, err)
	}
	return nil
}

// ProposalRef returns the reference of the proposal in ac:
// RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent) (RFC 9420 §5.2).
func (ac *AuthenticatedContent) ProposalRef(s Suite) ProposalRef {
	return ProposalRef(RefHash(s, "MLS 1.0 Proposal Reference", ac.Marshal()))
}

// membershipTag is MAC(membership_key, AuthenticatedContentTBM).
func membershipTag(s Suite, membershipKey []byte, ac *AuthenticatedContent, gc *GroupContext) []byte {
	tbm := appendFramedContentTBS(nil, ac.WireFormat, &ac.Content, gc)
	tbm = ac.Auth.append(tbm, ac.Content.ContentType)
	return s.MAC(membershipKey, tbm)
}

// checkEpoch checks that content belongs to the group and epoch of gc.
func checkEpoch(groupID []byte, epoch uint64, gc *GroupContext) error {
	if !bytes.Equal(groupID, gc.GroupID) {
		return fmt.Errorf("%w: message for group %x, this is group %x", ErrInvalidMessage, groupID, gc.GroupID)
	}
	if epoch != gc.Epoch {
		return fmt.Errorf("%w: message for epoch %d, group is at epoch %d", ErrInvalidMessage, epoch, gc.Epoch)
	}
	return nil
}

// ProtectPublic wraps ac (wire format mls_public_message) as a
// PublicMessage, adding the membership tag for a member sender. gc is the
// current group context and membershipKey the epoch's membership key
// (unused for non-members). Application data is refused: RFC 9420 §6 allows
// it only in a PrivateMessage.
func ProtectPublic(s Suite, ac *AuthenticatedContent, membershipKey []byte, gc *GroupContext) (*PublicMessage, error) {
	if ac.WireFormat != WireFormatPublicMessage {
		return nil, fmt.Errorf("%w: content signed for %v, not a PublicMessage", ErrInvalidMessage, ac.WireFormat)
	}
	if ac.Content.ContentType == ContentApplication {
		return nil, fmt.Errorf("%w: application data must be sent as a PrivateMessage", ErrInvalidMessage)
	}
	if ac.Content.ContentType == ContentCommit && len(ac.Auth.ConfirmationTag) == 0 {
		return nil, fmt.Errorf("%w: commit has no confirmation tag", ErrInvalidMessage)
	}
	if err := checkSenderContent(&ac.Content); err != nil {
		return nil, err
	}
	if needsGroupContext(ac.Content.Sender.Type) && gc == nil {
		return nil, fmt.Errorf("%w: %v sender needs the group context", ErrInvalidMessage, ac.Content.Sender.Type)
	}
	pm := &PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.Type == SenderMember {
		pm.MembershipTag = membershipTag(s, membershipKey, ac, gc)
	}
	return pm, nil
}

// UnprotectPublic checks a received PublicMessage against the group's
// current context gc and returns its AuthenticatedContent: the group id and
// epoch must match gc, application data is refused, the sender type must
// fit the content, and a member's membership tag must verify (in constant
// time; a mismatch matches ErrInvalidTag). The caller then verifies the
// signature with the sender's key (AuthenticatedContent.VerifySignature)
// and, for a commit, the confirmation tag.
func UnprotectPublic(s Suite, pm *PublicMessage, membershipKey []byte, gc *GroupContext) (*AuthenticatedContent, error) {
	if pm.Content.ContentType == ContentApplication {
		return nil, fmt.Errorf("%w: application data in a PublicMessage", ErrInvalidMessage)
	}
	if err := checkEpoch(pm.Content.GroupID, pm.Content.Epoch, gc); err != nil {
		return nil, err
	}
	if err := checkSenderContent(&pm.Content); err != nil {
		return nil, err
	}
	ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
	if pm.Content.Sender.Type == SenderMember {
		if !hmac.Equal(membershipTag(s, membershipKey, ac, gc), pm.MembershipTag) {
			return nil, fmt.Errorf("%w: membership tag from %v", ErrInvalidTag, pm.Content.Sender)
		}
	}
	return ac, nil
}
