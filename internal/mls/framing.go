package mls

import (
	"errors"
	"fmt"
)

// This file is the message framing of RFC 9420 §6: the content a member
// sends (FramedContent), its authentication (FramedContentAuthData), and the
// MLSMessage envelope for every wire format. Protection of content as a
// PublicMessage (§6.2) is in framing_public.go, as a PrivateMessage (§6.3) in
// framing_private.go.
//
// Decoding is strict: an unknown protocol version, wire format, content type
// or sender type is an error, because none of them can be skipped.

// Errors of message processing. Decoding failures match ErrDecode; AEAD and
// HPKE failures match ErrDecrypt; bad signatures match ErrInvalidSignature.
var (
	// ErrInvalidMessage is matched by messages that decode but break a rule
	// of RFC 9420: application data sent as a PublicMessage, a sender type
	// not allowed for the wire format, non-zero padding, a content type that
	// does not match, a Welcome with no entry for the receiver, and so on.
	ErrInvalidMessage = errors.New("mls: invalid message")
	// ErrInvalidTag is matched when a membership tag or confirmation tag does
	// not verify.
	ErrInvalidTag = errors.New("mls: invalid MAC tag")
	// ErrInvalidKeyPackage is matched by KeyPackages that fail validation
	// (RFC 9420 §10.1) for a reason other than a bad signature.
	ErrInvalidKeyPackage = errors.New("mls: invalid key package")
)

// WireFormat says what an MLSMessage carries (RFC 9420 §17.2).
type WireFormat uint16

// The wire formats of RFC 9420 §17.2.
const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

func (w WireFormat) String() string {
	switch w {
	case WireFormatPublicMessage:
		return "mls_public_message"
	case WireFormatPrivateMessage:
		return "mls_private_message"
	case WireFormatWelcome:
		return "mls_welcome"
	case WireFormatGroupInfo:
		return "mls_group_info"
	case WireFormatKeyPackage:
		return "mls_key_package"
	default:
		return fmt.Sprintf("wire_format(0x%04x)", uint16(w))
	}
}

// ContentType is the kind of content a FramedContent carries (RFC 9420 §6).
type ContentType uint8

// The content types of RFC 9420 §6.
const (
	ContentApplication ContentType = 1
	ContentProposal    ContentType = 2
	ContentCommit      ContentType = 3
)

func (c ContentType) String() string {
	switch c {
	case ContentApplication:
		return "application"
	case ContentProposal:
		return "proposal"
	case ContentCommit:
		return "commit"
	default:
		return fmt.Sprintf("content_type(%d)", uint8(c))
	}
}

func (r *Reader) readContentType() ContentType {
	c := ContentType(r.Uint8())
	if r.Err() == nil && (c < ContentApplication || c > ContentCommit) {
		r.Fail("unknown content type %d", uint8(c))
	}
	return c
}

// SenderType says who sent a message (RFC 9420 §6).
type SenderType uint8

// The sender types of RFC 9420 §6.
const (
	SenderMember            SenderType = 1
	SenderExternal          SenderType = 2
	SenderNewMemberProposal SenderType = 3
	SenderNewMemberCommit   SenderType = 4
)

func (t SenderType) String() string {
	switch t {
	case SenderMember:
		return "member"
	case SenderExternal:
		return "external"
	case SenderNewMemberProposal:
		return "new_member_proposal"
	case SenderNewMemberCommit:
		return "new_member_commit"
	default:
		return fmt.Sprintf("sender_type(%d)", uint8(t))
	}
}

// Sender identifies the sender of a message (RFC 9420 §6). LeafIndex is set
// for a member, SenderIndex (the index into the external_senders extension)
// for an external sender; new members have neither.
type Sender struct {
	Type        SenderType
	LeafIndex   LeafIndex
	SenderIndex uint32
}

// MemberSender returns the Sender for the member at leaf.
func MemberSender(leaf LeafIndex) Sender { return Sender{Type: SenderMember, LeafIndex: leaf} }

func (s Sender) String() string {
	switch s.Type {
	case SenderMember:
		return fmt.Sprintf("member(%d)", s.LeafIndex)
	case SenderExternal:
		return fmt.Sprintf("external(%d)", s.SenderIndex)
	}
	return s.Type.String()
}

func (s *Sender) append(b []byte) []byte {
	b = AppendUint8(b, uint8(s.Type))
	switch s.Type {
	case SenderMember:
		b = AppendUint32(b, uint32(s.LeafIndex))
	case SenderExternal:
		b = AppendUint32(b, s.SenderIndex)
	}
	return b
}

func (r *Reader) readSender() Sender {
	s := Sender{Type: SenderType(r.Uint8())}
	if r.Err() != nil {
		return s
	}
	switch s.Type {
	case SenderMember:
		s.LeafIndex = LeafIndex(r.Uint32())
	case SenderExternal:
		s.SenderIndex = r.Uint32()
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		r.Fail("unknown sender type %d", uint8(s.Type))
	}
	return s
}

// FramedContent is the content of a handshake or application message with
// its routing header (RFC 9420 §6). ContentType says which of
// ApplicationData, Proposal or Commit is set.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

// appendBody appends the select(content_type) part of a FramedContent, which
// PrivateMessageContent shares.
func (c *FramedContent) appendBody(b []byte) []byte {
	switch c.ContentType {
	case ContentApplication:
		return AppendOpaque(b, c.ApplicationData)
	case ContentProposal:
		return c.Proposal.append(b)
	case ContentCommit:
		return c.Commit.append(b)
	default:
		panic(fmt.Sprintf("mls: encoding content of unknown type %v", c.ContentType))
	}
}

// readContentBody reads the select(content_type) part into c, whose ContentType is
// already set.
func (r *Reader) readContentBody(c *FramedContent) {
	switch c.ContentType {
	case ContentApplication:
		c.ApplicationData = r.Opaque()
	case ContentProposal:
		p := r.readProposal()
		c.Proposal = &p
	case ContentCommit:
		cm := r.readCommit()
		c.Commit = &cm
	default:
		r.Fail("unknown content type %d", uint8(c.ContentType))
	}
}

func (c *FramedContent) append(b []byte) []byte {
	b = AppendOpaque(b, c.GroupID)
	b = AppendUint64(b, c.Epoch)
	b = c.Sender.append(b)
	b = AppendOpaque(b, c.AuthenticatedData)
	b = AppendUint8(b, uint8(c.ContentType))
	return c.appendBody(b)
}

// Marshal returns the TLS encoding of c.
func (c *FramedContent) Marshal() []byte { return c.append(nil) }

func (r *Reader) readFramedContent() FramedContent {
	var c FramedContent
	c.GroupID = r.Opaque()
	c.Epoch = r.Uint64()
	c.Sender = r.readSender()
	c.AuthenticatedData = r.Opaque()
	c.ContentType = r.readContentType()
	if r.Err() != nil {
		return c
	}
	r.readContentBody(&c)
	return c
}

// FramedContentAuthData authenticates a FramedContent (RFC 9420 §6.1):
// the sender's signature and, for a commit only, the confirmation tag.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte // commit only
}

func (a *FramedContentAuthData) append(b []byte, ct ContentType) []byte {
	b = AppendOpaque(b, a.Signature)
	if ct == ContentCommit {
		b = AppendOpaque(b, a.ConfirmationTag)
	}
	return b
}

func (r *Reader) readFramedContentAuthData(ct ContentType) FramedContentAuthData {
	a := FramedContentAuthData{Signature: r.Opaque()}
	if ct == ContentCommit {
		a.ConfirmationTag = r.Opaque()
	}
	return a
}

// AuthenticatedContent is a FramedContent with its authentication and the
// wire format it travels in (RFC 9420 §6): what PublicMessage and
// PrivateMessage protect, and what a receiver gets back after unprotecting.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

func (ac *AuthenticatedContent) append(b []byte) []byte {
	b = AppendUint16(b, uint16(ac.WireFormat))
	b = ac.Content.append(b)
	return ac.Auth.append(b, ac.Content.ContentType)
}

// Marshal returns the TLS encoding of ac.
func (ac *AuthenticatedContent) Marshal() []byte { return ac.append(nil) }

func (r *Reader) readAuthenticatedContent() AuthenticatedContent {
	var ac AuthenticatedContent
	ac.WireFormat = WireFormat(r.Uint16())
	if r.Err() == nil && ac.WireFormat != WireFormatPublicMessage && ac.WireFormat != WireFormatPrivateMessage {
		r.Fail("wire format %v cannot carry framed content", ac.WireFormat)
		return ac
	}
	ac.Content = r.readFramedContent()
	ac.Auth = r.readFramedContentAuthData(ac.Content.ContentType)
	return ac
}

// ParseAuthenticatedContent decodes one AuthenticatedContent that fills b.
func ParseAuthenticatedContent(b []byte) (*AuthenticatedContent, error) {
	r := NewReader(b)
	ac := r.readAuthenticatedContent()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing AuthenticatedContent: %w", err)
	}
	return &ac, nil
}

// PublicMessage is signed, unencrypted content (RFC 9420 §6.2).
// MembershipTag is set exactly when the sender is a member.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

func (m *PublicMessage) append(b []byte) []byte {
	b = m.Content.append(b)
	b = m.Auth.append(b, m.Content.ContentType)
	if m.Content.Sender.Type == SenderMember {
		b = AppendOpaque(b, m.MembershipTag)
	}
	return b
}

func (r *Reader) readPublicMessage() PublicMessage {
	var m PublicMessage
	m.Content = r.readFramedContent()
	m.Auth = r.readFramedContentAuthData(m.Content.ContentType)
	if m.Content.Sender.Type == SenderMember {
		m.MembershipTag = r.Opaque()
	}
	return m
}

// PrivateMessage is signed and encrypted content (RFC 9420 §6.3).
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

func (m *PrivateMessage) append(b []byte) []byte {
	b = AppendOpaque(b, m.GroupID)
	b = AppendUint64(b, m.Epoch)
	b = AppendUint8(b, uint8(m.ContentType))
	b = AppendOpaque(b, m.AuthenticatedData)
	b = AppendOpaque(b, m.EncryptedSenderData)
	return AppendOpaque(b, m.Ciphertext)
}

func (r *Reader) readPrivateMessage() PrivateMessage {
	var m PrivateMessage
	m.GroupID = r.Opaque()
	m.Epoch = r.Uint64()
	m.ContentType = r.readContentType()
	m.AuthenticatedData = r.Opaque()
	m.EncryptedSenderData = r.Opaque()
	m.Ciphertext = r.Opaque()
	return m
}

// MLSMessage is the envelope of everything MLS sends (RFC 9420 §6).
// WireFormat says which one of the pointer fields is set.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// append appends the TLS encoding of m. It panics if the field
// WireFormat names is nil, which is a programming error.
func (m *MLSMessage) append(b []byte) []byte {
	b = AppendUint16(b, uint16(m.Version))
	b = AppendUint16(b, uint16(m.WireFormat))
	switch m.WireFormat {
	case WireFormatPublicMessage:
		b = m.PublicMessage.append(b)
	case WireFormatPrivateMessage:
		b = m.PrivateMessage.append(b)
	case WireFormatWelcome:
		b = m.Welcome.append(b)
	case WireFormatGroupInfo:
		b = m.GroupInfo.append(b)
	case WireFormatKeyPackage:
		b = m.KeyPackage.append(b)
	default:
		panic(fmt.Sprintf("mls: encoding MLSMessage of unknown wire format %v", m.WireFormat))
	}
	return b
}

// Marshal returns the TLS encoding of m.
func (m *MLSMessage) Marshal() []byte { return m.append(nil) }

func (r *Reader) readMLSMessage() MLSMessage {
	var m MLSMessage
	m.Version = ProtocolVersion(r.Uint16())
	m.WireFormat = WireFormat(r.Uint16())
	if r.Err() != nil {
		return m
	}
	if m.Version != MLS10 {
		r.Fail("unsupported protocol version %d", m.Version)
		return m
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		v := r.readPublicMessage()
		m.PublicMessage = &v
	case WireFormatPrivateMessage:
		v := r.readPrivateMessage()
		m.PrivateMessage = &v
	case WireFormatWelcome:
		v := r.readWelcome()
		m.Welcome = &v
	case WireFormatGroupInfo:
		v := r.readGroupInfo()
		m.GroupInfo = &v
	case WireFormatKeyPackage:
		v := r.readKeyPackage()
		m.KeyPackage = &v
	default:
		r.Fail("unknown wire format %v", m.WireFormat)
	}
	return m
}

// ParseMLSMessage decodes one MLSMessage that fills b. Only MLS 1.0 is
// accepted.
func ParseMLSMessage(b []byte) (*MLSMessage, error) {
	r := NewReader(b)
	m := r.readMLSMessage()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing MLSMessage: %w", err)
	}
	return &m, nil
}
