package mls

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
)

// This file is external senders (RFC 9420 §12.1.8.1): the external_senders
// GroupContext extension, proposals signed by one of its entries, and their
// checks on receipt. An external proposal travels as a PublicMessage with
// sender type external and the entry's index; it carries no membership tag
// and its signature, made with the entry's key, covers FramedContentTBS
// without the GroupContext (§6.1). Only Add, Remove, PreSharedKey, ReInit and
// GroupContextExtensions may come from an external sender (§12.1.8). Once
// received, an external proposal is cached like any other and a member
// commits it by reference.

// Errors of external senders. Each comes wrapped together with
// ErrInvalidMessage (on receipt) or ErrInvalidProposal (on sending or in a
// GroupContextExtensions proposal), so callers may branch on either.
var (
	// ErrNoExternalSenders is matched when a message names an external
	// sender but the group has no external_senders extension.
	ErrNoExternalSenders = errors.New("mls: group has no external senders")
	// ErrUnknownExternalSender is matched when a sender index is beyond
	// the group's external_senders list.
	ErrUnknownExternalSender = errors.New("mls: unknown external sender")
	// ErrExternalSenderContent is matched by content an external sender
	// may not send: a commit, application data, or a proposal of a type
	// other than Add, Remove, PreSharedKey, ReInit and
	// GroupContextExtensions.
	ErrExternalSenderContent = errors.New("mls: content not allowed from an external sender")
	// ErrInvalidExternalSenders is matched by an external_senders
	// extension that does not decode or holds a bad entry.
	ErrInvalidExternalSenders = errors.New("mls: invalid external_senders extension")
)

// ExternalSender is one entry of the external_senders extension: a party
// outside the group that may send proposals to it.
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

func (e *ExternalSender) append(b []byte) []byte {
	b = AppendOpaque(b, e.SignatureKey)
	return e.Credential.append(b)
}

func (r *Reader) readExternalSender() ExternalSender {
	return ExternalSender{SignatureKey: r.Opaque(), Credential: r.readCredential()}
}

// Marshal returns the TLS encoding of one ExternalSender.
func (e *ExternalSender) Marshal() []byte { return e.append(nil) }

// ParseExternalSender decodes one ExternalSender that fills b.
func ParseExternalSender(b []byte) (*ExternalSender, error) {
	r := NewReader(b)
	e := r.readExternalSender()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing ExternalSender: %w", err)
	}
	return &e, nil
}

// AppendExternalSenders appends ExternalSender external_senders<V>, the
// extension_data of the external_senders extension.
func AppendExternalSenders(b []byte, senders []ExternalSender) []byte {
	return AppendVector(b, func(b []byte) []byte {
		for i := range senders {
			b = senders[i].append(b)
		}
		return b
	})
}

// ParseExternalSenders decodes the extension_data of an external_senders
// extension. Failures match ErrDecode.
func ParseExternalSenders(b []byte) ([]ExternalSender, error) {
	r := NewReader(b)
	out := []ExternalSender{}
	r.Vector(func(r *Reader) {
		e := r.readExternalSender()
		if r.Err() == nil {
			out = append(out, e)
		}
	})
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing external_senders: %w", err)
	}
	return out, nil
}

// ExternalSendersExtension returns the external_senders GroupContext
// extension listing senders, in order: an entry's position is the
// sender_index its proposals carry.
func ExternalSendersExtension(senders []ExternalSender) Extension {
	return Extension{Type: ExtensionExternalSenders, Data: AppendExternalSenders(nil, senders)}
}

// GroupExternalSenders returns the external senders a GroupContext
// extension list allows, or ErrNoExternalSenders if it has no
// external_senders extension.
func GroupExternalSenders(exts []Extension) ([]ExternalSender, error) {
	e, ok := FindExtension(exts, ExtensionExternalSenders)
	if !ok {
		return nil, ErrNoExternalSenders
	}
	senders, err := ParseExternalSenders(e.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidExternalSenders, err)
	}
	return senders, nil
}

// WithExternalSender returns a copy of the GroupContext extension list exts
// with sender appended to its external_senders extension (which is added if
// missing), and the new sender's index: the extension list for a
// GroupContextExtensions proposal that admits one more external sender.
func WithExternalSender(exts []Extension, sender ExternalSender) ([]Extension, uint32, error) {
	senders, err := GroupExternalSenders(exts)
	if err != nil && !errors.Is(err, ErrNoExternalSenders) {
		return nil, 0, err
	}
	senders = append(senders, ExternalSender{SignatureKey: bytes.Clone(sender.SignatureKey), Credential: *cloneCredential(&sender.Credential)})
	ext := ExternalSendersExtension(senders)
	out := cloneExtensions(exts)
	replaced := false
	for i := range out {
		if out[i].Type == ExtensionExternalSenders {
			out[i], replaced = ext, true
		}
	}
	if !replaced {
		out = append(out, ext)
	}
	return out, uint32(len(senders) - 1), nil
}

// FindExternalSender returns the index of the external sender with
// signature key pub in the GroupContext extension list exts.
func FindExternalSender(exts []Extension, pub []byte) (uint32, error) {
	senders, err := GroupExternalSenders(exts)
	if err != nil {
		return 0, err
	}
	for i := range senders {
		if bytes.Equal(senders[i].SignatureKey, pub) {
			return uint32(i), nil
		}
	}
	return 0, fmt.Errorf("%w: no entry has this signature key", ErrUnknownExternalSender)
}

// externalSenderAllowed reports whether an external sender may send a
// proposal of type t (RFC 9420 §12.1.8, the "Ext" column of §17.4).
func externalSenderAllowed(t ProposalType) bool {
	switch t {
	case ProposalAdd, ProposalRemove, ProposalPreSharedKey, ProposalReInit, ProposalGroupContextExtensions:
		return true
	}
	return false
}

// checkExternalContent applies the content rule for sender type external.
func checkExternalContent(c *FramedContent) error {
	if c.ContentType != ContentProposal {
		return fmt.Errorf("%w: %w: %v content", ErrInvalidMessage, ErrExternalSenderContent, c.ContentType)
	}
	if c.Proposal == nil || !externalSenderAllowed(c.Proposal.Type) {
		t := "empty"
		if c.Proposal != nil {
			t = c.Proposal.Type.String()
		}
		return fmt.Errorf("%w: %w: %s proposal", ErrInvalidMessage, ErrExternalSenderContent, t)
	}
	return nil
}

// sigKeySizes caches the signature public key size of each suite.
var sigKeySizes sync.Map // CipherSuite -> int

// signatureKeySize returns the size of a signature public key of s, found
// once by generating a key.
func signatureKeySize(s Suite) (int, error) {
	if n, ok := sigKeySizes.Load(s.ID()); ok {
		return n.(int), nil
	}
	_, pub, err := s.GenerateSignatureKey()
	if err != nil {
		return 0, err
	}
	sigKeySizes.Store(s.ID(), len(pub))
	return len(pub), nil
}

// checkExternalSenders checks the data of an external_senders extension:
// it decodes, every signature key has the size of the suite's keys, and
// every credential is a basic credential with an identity or an X.509
// chain with a certificate. Failures match ErrInvalidExternalSenders.
func checkExternalSenders(s Suite, data []byte) error {
	senders, err := ParseExternalSenders(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidExternalSenders, err)
	}
	size := 0
	if s != nil {
		if size, err = signatureKeySize(s); err != nil {
			return err
		}
	}
	for i := range senders {
		e := &senders[i]
		switch {
		case len(e.SignatureKey) == 0:
			return fmt.Errorf("%w: entry %d has no signature key", ErrInvalidExternalSenders, i)
		case size != 0 && len(e.SignatureKey) != size:
			return fmt.Errorf("%w: entry %d has a %d-byte signature key, the suite's are %d bytes",
				ErrInvalidExternalSenders, i, len(e.SignatureKey), size)
		}
		switch e.Credential.Type {
		case CredentialBasic:
			if len(e.Credential.Identity) == 0 {
				return fmt.Errorf("%w: entry %d has an empty identity", ErrInvalidExternalSenders, i)
			}
		case CredentialX509:
			if len(e.Credential.Certificates) == 0 || len(e.Credential.Certificates[0]) == 0 {
				return fmt.Errorf("%w: entry %d has an empty certificate chain", ErrInvalidExternalSenders, i)
			}
		}
	}
	return nil
}

// externalSenderKey returns the signature key of the external sender at
// index in the group's current GroupContext.
func (g *Group) externalSenderKey(index uint32) (*ExternalSender, error) {
	senders, err := GroupExternalSenders(g.ctx.Extensions)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if uint64(index) >= uint64(len(senders)) {
		return nil, fmt.Errorf("%w: %w: index %d of %d", ErrInvalidMessage, ErrUnknownExternalSender, index, len(senders))
	}
	return &senders[index], nil
}

// ExternalProposal builds a proposal from an external sender: the
// MLSMessage bytes of a PublicMessage with sender type external and index
// senderIndex, signed with signer's key, for the group and epoch of gc (as
// learned from a GroupInfo, for example). gc's external_senders extension
// must list signer's signature key at senderIndex, and p must be a type an
// external sender may send; otherwise the error matches
// ErrInvalidProposal with ErrNoExternalSenders, ErrUnknownExternalSender or
// ErrExternalSenderContent.
func ExternalProposal(gc *GroupContext, senderIndex uint32, signer *Signer, p *Proposal, authenticatedData []byte) ([]byte, error) {
	if gc == nil || signer == nil || p == nil {
		return nil, fmt.Errorf("%w: ExternalProposal needs a group context, a signer and a proposal", ErrInvalidProposal)
	}
	s, err := LookupSuite(gc.CipherSuite)
	if err != nil {
		return nil, err
	}
	senders, err := GroupExternalSenders(gc.Extensions)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	if uint64(senderIndex) >= uint64(len(senders)) {
		return nil, fmt.Errorf("%w: %w: index %d of %d", ErrInvalidProposal, ErrUnknownExternalSender, senderIndex, len(senders))
	}
	if !bytes.Equal(senders[senderIndex].SignatureKey, signer.SignaturePub) {
		return nil, fmt.Errorf("%w: %w: entry %d has another signature key", ErrInvalidProposal, ErrUnknownExternalSender, senderIndex)
	}
	// A copy through the codec, so that the message shares nothing with p.
	kept, err := ParseProposal(p.Marshal())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	if authenticatedData == nil {
		authenticatedData = []byte{}
	}
	content := &FramedContent{
		GroupID:           bytes.Clone(gc.GroupID),
		Epoch:             gc.Epoch,
		Sender:            Sender{Type: SenderExternal, SenderIndex: senderIndex},
		AuthenticatedData: bytes.Clone(authenticatedData),
		ContentType:       ContentProposal,
		Proposal:          kept,
	}
	if err := checkExternalContent(content); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	ac, err := SignFramedContent(s, signer.SignaturePriv, WireFormatPublicMessage, content, gc)
	if err != nil {
		return nil, err
	}
	pm, err := ProtectPublic(s, ac, nil, gc)
	if err != nil {
		return nil, err
	}
	m := &MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}
	return m.Marshal(), nil
}
