package mls

import "fmt"

// This file is the Proposal of RFC 9420 §12.1 and the ProposalOrRef a
// Commit carries (§12.4).
//
// Unknown proposal types are a decoding error, not opaque values: the
// Proposal body has no length prefix, so a proposal of a type this package
// does not know cannot be skipped, and anything after it could not be read.

// ProposalType identifies the kind of a Proposal (RFC 9420 §17.4).
type ProposalType uint16

// The proposal types of RFC 9420 §17.4.
const (
	ProposalAdd                    ProposalType = 1
	ProposalUpdate                 ProposalType = 2
	ProposalRemove                 ProposalType = 3
	ProposalPreSharedKey           ProposalType = 4
	ProposalReInit                 ProposalType = 5
	ProposalExternalInit           ProposalType = 6
	ProposalGroupContextExtensions ProposalType = 7
)

func (t ProposalType) String() string {
	switch t {
	case ProposalAdd:
		return "add"
	case ProposalUpdate:
		return "update"
	case ProposalRemove:
		return "remove"
	case ProposalPreSharedKey:
		return "psk"
	case ProposalReInit:
		return "reinit"
	case ProposalExternalInit:
		return "external_init"
	case ProposalGroupContextExtensions:
		return "group_context_extensions"
	default:
		return fmt.Sprintf("proposal(0x%04x)", uint16(t))
	}
}

// AddProposal asks to add the client of KeyPackage (RFC 9420 §12.1.1).
type AddProposal struct {
	KeyPackage KeyPackage
}

// UpdateProposal replaces the sender's own leaf (RFC 9420 §12.1.2).
type UpdateProposal struct {
	LeafNode LeafNode
}

// RemoveProposal removes the member at leaf Removed (RFC 9420 §12.1.3).
type RemoveProposal struct {
	Removed LeafIndex
}

// PreSharedKeyProposal injects a PSK into the next epoch (RFC 9420 §12.1.4).
type PreSharedKeyProposal struct {
	PSK PreSharedKeyID
}

// ReInitProposal asks to close the group and start a new one with the given
// parameters (RFC 9420 §12.1.5).
type ReInitProposal struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuite
	Extensions  []Extension
}

// ExternalInitProposal carries the KEM output of an external joiner
// (RFC 9420 §12.1.6).
type ExternalInitProposal struct {
	KEMOutput []byte
}

// GroupContextExtensionsProposal replaces the group context extensions
// (RFC 9420 §12.1.7).
type GroupContextExtensionsProposal struct {
	Extensions []Extension
}

// Proposal is one proposed change to a group (RFC 9420 §12.1). Type says
// which one field is set.
type Proposal struct {
	Type                   ProposalType
	Add                    *AddProposal
	Update                 *UpdateProposal
	Remove                 *RemoveProposal
	PreSharedKey           *PreSharedKeyProposal
	ReInit                 *ReInitProposal
	ExternalInit           *ExternalInitProposal
	GroupContextExtensions *GroupContextExtensionsProposal
}

// append appends the TLS encoding of p. It panics if the field Type names is
// nil, which is a programming error.
func (p *Proposal) append(b []byte) []byte {
	b = AppendUint16(b, uint16(p.Type))
	switch p.Type {
	case ProposalAdd:
		b = p.Add.KeyPackage.append(b)
	case ProposalUpdate:
		b = p.Update.LeafNode.append(b)
	case ProposalRemove:
		b = AppendUint32(b, uint32(p.Remove.Removed))
	case ProposalPreSharedKey:
		b = p.PreSharedKey.PSK.append(b)
	case ProposalReInit:
		b = AppendOpaque(b, p.ReInit.GroupID)
		b = AppendUint16(b, uint16(p.ReInit.Version))
		b = AppendUint16(b, uint16(p.ReInit.CipherSuite))
		b = AppendExtensions(b, p.ReInit.Extensions)
	case ProposalExternalInit:
		b = AppendOpaque(b, p.ExternalInit.KEMOutput)
	case ProposalGroupContextExtensions:
		b = AppendExtensions(b, p.GroupContextExtensions.Extensions)
	default:
		panic(fmt.Sprintf("mls: encoding proposal of unknown type %v", p.Type))
	}
	return b
}

// Marshal returns the TLS encoding of p.
func (p *Proposal) Marshal() []byte { return p.append(nil) }

// readProposal reads a Proposal; an unknown type is an error (see the file
// comment).
func (r *Reader) readProposal() Proposal {
	p := Proposal{Type: ProposalType(r.Uint16())}
	if r.Err() != nil {
		return p
	}
	switch p.Type {
	case ProposalAdd:
		p.Add = &AddProposal{KeyPackage: r.readKeyPackage()}
	case ProposalUpdate:
		p.Update = &UpdateProposal{LeafNode: r.readLeafNode()}
	case ProposalRemove:
		p.Remove = &RemoveProposal{Removed: LeafIndex(r.Uint32())}
	case ProposalPreSharedKey:
		p.PreSharedKey = &PreSharedKeyProposal{PSK: r.readPreSharedKeyID()}
	case ProposalReInit:
		p.ReInit = &ReInitProposal{
			GroupID:     r.Opaque(),
			Version:     ProtocolVersion(r.Uint16()),
			CipherSuite: CipherSuite(r.Uint16()),
			Extensions:  r.ReadExtensions(),
		}
	case ProposalExternalInit:
		p.ExternalInit = &ExternalInitProposal{KEMOutput: r.Opaque()}
	case ProposalGroupContextExtensions:
		p.GroupContextExtensions = &GroupContextExtensionsProposal{Extensions: r.ReadExtensions()}
	default:
		r.Fail("unknown proposal type %v", p.Type)
	}
	return p
}

// ParseProposal decodes one Proposal that fills b.
func ParseProposal(b []byte) (*Proposal, error) {
	r := NewReader(b)
	p := r.readProposal()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing Proposal: %w", err)
	}
	return &p, nil
}

// ProposalRef names a proposal sent on its own: RefHash("MLS 1.0 Proposal
// Reference", AuthenticatedContent) (RFC 9420 §5.2).
type ProposalRef []byte

// ProposalOrRefType says whether a ProposalOrRef holds a proposal by value or
// by reference (RFC 9420 §12.4).
type ProposalOrRefType uint8

// The ProposalOrRef types of RFC 9420 §12.4.
const (
	ProposalOrRefProposal  ProposalOrRefType = 1
	ProposalOrRefReference ProposalOrRefType = 2
)

// ProposalOrRef is one entry of a Commit's proposal list: a proposal inline
// (Type ProposalOrRefProposal, Proposal set) or a reference to a proposal
// sent earlier in the epoch (Type ProposalOrRefReference, Reference set).
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal
	Reference ProposalRef
}

// append appends the TLS encoding of p.
func (p *ProposalOrRef) append(b []byte) []byte {
	b = AppendUint8(b, uint8(p.Type))
	switch p.Type {
	case ProposalOrRefProposal:
		b = p.Proposal.append(b)
	case ProposalOrRefReference:
		b = AppendOpaque(b, p.Reference)
	default:
		panic(fmt.Sprintf("mls: encoding ProposalOrRef of unknown type %d", p.Type))
	}
	return b
}

// readProposalOrRef reads a ProposalOrRef; unknown types are an error.
func (r *Reader) readProposalOrRef() ProposalOrRef {
	p := ProposalOrRef{Type: ProposalOrRefType(r.Uint8())}
	if r.Err() != nil {
		return p
	}
	switch p.Type {
	case ProposalOrRefProposal:
		prop := r.readProposal()
		p.Proposal = &prop
	case ProposalOrRefReference:
		p.Reference = r.Opaque()
	default:
		r.Fail("unknown ProposalOrRef type %d", p.Type)
	}
	return p
}
