package server

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The node reads only the clear header of an MLSMessage (RFC 9420 §6):
//
//	struct {
//	    ProtocolVersion version = mls10;   // uint16, 1
//	    WireFormat wire_format;            // uint16
//	    select (MLSMessage.wire_format) {
//	        case mls_public_message:  PublicMessage public_message;
//	        case mls_private_message: PrivateMessage private_message;
//	        case mls_welcome:         Welcome welcome;
//	        ...
//	    };
//	} MLSMessage;
//
// A PublicMessage starts with its FramedContent:
//
//	opaque group_id<V>; uint64 epoch; Sender sender;
//	opaque authenticated_data<V>; ContentType content_type; ...
//
// where Sender is a uint8 sender_type followed by a uint32 leaf_index
// (member) or sender_index (external), or nothing (new_member_proposal,
// new_member_commit). A PrivateMessage starts with
//
//	opaque group_id<V>; uint64 epoch; ContentType content_type; ...
//
// This file routes by that header alone, before anything is decoded; the
// handshake content of a PublicMessage is then checked against the group's
// public view (groupview.go). A PrivateMessage stays opaque after its
// content type.

// errMLSHeader matches every header parse error.
var errMLSHeader = errors.New("malformed MLSMessage header")

// MLS wire constants (RFC 9420 §6, §17); mlsVersion10 is in keypackage.go.
const (
	wireFormatPublicMessage  = 1
	wireFormatPrivateMessage = 2
	wireFormatWelcome        = 3

	contentTypeApplication = 1
	contentTypeProposal    = 2
	contentTypeCommit      = 3

	senderTypeMember            = 1
	senderTypeExternal          = 2
	senderTypeNewMemberProposal = 3
	senderTypeNewMemberCommit   = 4
)

// mlsHeader is the clear part of a PublicMessage or PrivateMessage.
type mlsHeader struct {
	wireFormat  uint16
	groupID     []byte // aliases the parsed bytes
	epoch       uint64
	senderType  uint8 // 0 for a PrivateMessage (its sender is encrypted)
	contentType uint8
	size        int // bytes up to and including content_type
}

// contentTypeName names an MLS content type for error messages.
func contentTypeName(ct uint8) string {
	switch ct {
	case contentTypeApplication:
		return "application"
	case contentTypeProposal:
		return "proposal"
	case contentTypeCommit:
		return "commit"
	default:
		return fmt.Sprintf("unknown(%d)", ct)
	}
}

// headerReader reads the TLS presentation language encodings of RFC 9420 §2.1.
type headerReader struct {
	b   []byte
	off int
	err error
}

func (r *headerReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", errMLSHeader, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *headerReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail("%s: need %d bytes, have %d", what, n, len(r.b)-r.off)
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *headerReader) u8(what string) uint8 {
	v := r.take(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *headerReader) u16(what string) uint16 {
	v := r.take(2, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (r *headerReader) u32(what string) uint32 {
	v := r.take(4, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *headerReader) u64(what string) uint64 {
	v := r.take(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// varint reads a §2.1.2 variable-length integer, refusing the 0b11 prefix
// and encodings longer than needed.
func (r *headerReader) varint(what string) int {
	first := r.take(1, what+" length")
	if first == nil {
		return 0
	}
	prefix := first[0] >> 6
	if prefix == 3 {
		r.fail("%s length: invalid variable-length integer prefix", what)
		return 0
	}
	n := 1 << prefix
	v := uint32(first[0] & 0x3f)
	rest := r.take(n-1, what+" length")
	if r.err != nil {
		return 0
	}
	for _, c := range rest {
		v = v<<8 | uint32(c)
	}
	if prefix > 0 && v < 1<<(8*(n/2)-2) {
		r.fail("%s length: %d not minimally encoded", what, v)
		return 0
	}
	return int(v)
}

// opaque reads an opaque<V> vector.
func (r *headerReader) opaque(what string) []byte {
	n := r.varint(what)
	return r.take(n, what)
}

// parseMLSHeader reads the clear header of an MLSMessage carrying a
// PublicMessage or PrivateMessage. Any other wire format, another protocol
// version, a truncated header or a non-minimal length is an error wrapping
// errMLSHeader.
func parseMLSHeader(b []byte) (mlsHeader, error) {
	r := &headerReader{b: b}
	var h mlsHeader
	if v := r.u16("version"); r.err == nil && v != mlsVersion10 {
		r.fail("protocol version %d, want %d (mls10)", v, mlsVersion10)
	}
	h.wireFormat = r.u16("wire_format")
	if r.err != nil {
		return mlsHeader{}, r.err
	}
	switch h.wireFormat {
	case wireFormatPublicMessage:
		h.groupID = r.opaque("group_id")
		h.epoch = r.u64("epoch")
		h.senderType = r.u8("sender_type")
		if r.err != nil {
			return mlsHeader{}, r.err
		}
		switch h.senderType {
		case senderTypeMember:
			r.u32("leaf_index")
		case senderTypeExternal:
			r.u32("sender_index")
		case senderTypeNewMemberProposal, senderTypeNewMemberCommit:
		default:
			r.fail("unknown sender_type %d", h.senderType)
		}
		r.opaque("authenticated_data")
		h.contentType = r.u8("content_type")
	case wireFormatPrivateMessage:
		h.groupID = r.opaque("group_id")
		h.epoch = r.u64("epoch")
		h.contentType = r.u8("content_type")
	default:
		r.fail("wire_format %d is not a PublicMessage (1) or PrivateMessage (2)", h.wireFormat)
	}
	if r.err != nil {
		return mlsHeader{}, r.err
	}
	h.size = r.off
	switch h.contentType {
	case contentTypeApplication, contentTypeProposal, contentTypeCommit:
	default:
		return mlsHeader{}, fmt.Errorf("%w: unknown content_type %d", errMLSHeader, h.contentType)
	}
	if len(h.groupID) == 0 {
		return mlsHeader{}, fmt.Errorf("%w: empty group_id", errMLSHeader)
	}
	if h.wireFormat == wireFormatPublicMessage {
		// RFC 9420 §6: application data is always encrypted; §12.1.8 and
		// §12.4.3.2: a new member proposes or commits only by the matching
		// sender type, and an external sender only proposes.
		switch {
		case h.contentType == contentTypeApplication:
			return mlsHeader{}, fmt.Errorf("%w: application content in a PublicMessage", errMLSHeader)
		case h.senderType == senderTypeNewMemberCommit && h.contentType != contentTypeCommit,
			h.senderType == senderTypeNewMemberProposal && h.contentType != contentTypeProposal,
			h.senderType == senderTypeExternal && h.contentType != contentTypeProposal:
			return mlsHeader{}, fmt.Errorf("%w: sender_type %d cannot send %s content", errMLSHeader, h.senderType, contentTypeName(h.contentType))
		}
	}
	return h, nil
}

// checkWelcomeHeader checks that b starts like an MLSMessage carrying a
// Welcome (version mls10, wire_format mls_welcome). The Welcome itself is
// opaque to the node.
func checkWelcomeHeader(b []byte) error {
	r := &headerReader{b: b}
	v := r.u16("version")
	wf := r.u16("wire_format")
	switch {
	case r.err != nil:
		return r.err
	case v != mlsVersion10:
		return fmt.Errorf("%w: welcome: protocol version %d, want %d (mls10)", errMLSHeader, v, mlsVersion10)
	case wf != wireFormatWelcome:
		return fmt.Errorf("%w: welcome: wire_format %d, want %d (mls_welcome)", errMLSHeader, wf, wireFormatWelcome)
	case len(b) == r.off:
		return fmt.Errorf("%w: welcome: no body", errMLSHeader)
	}
	return nil
}
