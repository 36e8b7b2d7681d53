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

// Each proposal body has an append/read pair; Proposal adds the type.

func (p *AddProposal) append(b []byte) []byte { return p.KeyPackage.append(b) }

func (r *Reader) readAddProposal() *AddProposal {
	return &AddProposal{KeyPackage: r.readKeyPackage()}
}

func (p *UpdateProposal) append(b []byte) []byte { return p.LeafNode.append(b) }

func (r *Reader) readUpdateProposal() *UpdateProposal {
	return &UpdateProposal{LeafNode: r.readLeafNode()}
}

func (p *RemoveProposal) append(b []byte) []byte { return AppendUint32(b, uint32(p.Removed)) }

func (r *Reader) readRemoveProposal() *RemoveProposal {
	return &RemoveProposal{Removed: LeafIndex(r.Uint32())}
}

func (p *PreSharedKeyProposal) append(b []byte) []byte { return p.PSK.append(b) }

func (r *Reader) readPreSharedKeyProposal() *PreSharedKeyProposal {
	return &PreSharedKeyProposal{PSK: r.readPreSharedKeyID()}
}

func (p *ReInitProposal) append(b []byte) []byte {
	b = AppendOpaque(b, p.GroupID)
	b = AppendUint16(b, uint16(p.Version))
	b = AppendUint16(b, uint16(p.CipherSuite))
	return AppendExtensions(b, p.Extensions)
}

func (r *Reader) readReInitProposal() *ReInitProposal {
	return &ReInitProposal{
		GroupID:     r.Opaque(),
		Version:     ProtocolVersion(r.Uint16()),
		CipherSuite: CipherSuite(r.Uint16()),
		Extensions:  r.ReadExtensions(),
	}
}

func (p *ExternalInitProposal) append(b []byte) []byte { return AppendOpaque(b, p.KEMOutput) }

func (r *Reader) readExternalInitProposal() *ExternalInitProposal {
	return &ExternalInitProposal{KEMOutput: r.Opaque()}
}

func (p *GroupContextExtensionsProposal) append(b []byte) []byte {
	return AppendExtensions(b, p.Extensions)
}

func (r *Reader) readGroupContextExtensionsProposal() *GroupContextExtensionsProposal {
	return &GroupContextExtensionsProposal{Extensions: r.ReadExtensions()}
}

// append appends the TLS encoding of p. It panics if the field Type names is
// nil, which is a programming error.
func (p *Proposal) append(b []byte) []byte {
	b = AppendUint16(b, uint16(p.Type))
	switch p.Type {
	case ProposalAdd:
		return p.Add.append(b)
	case ProposalUpdate:
		return p.Update.append(b)
	case ProposalRemove:
		return p.Remove.append(b)
	case ProposalPreSharedKey:
		return p.PreSharedKey.append(b)
	case ProposalReInit:
		return p.ReInit.append(b)
	case ProposalExternalInit:
		return p.ExternalInit.append(b)
	case ProposalGroupContextExtensions:
		return p.GroupContextExtensions.append(b)
	default:
		panic(fmt.Sprintf("mls: encoding proposal of unknown type %v", p.Type))
	}
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
		p.Add = r.readAddProposal()
	case ProposalUpdate:
		p.Update = r.readUpdateProposal()
	case ProposalRemove:
		p.Remove = r.readRemoveProposal()
	case ProposalPreSharedKey:
		p.PreSharedKey = r.readPreSharedKeyProposal()
	case ProposalReInit:
		p.ReInit = r.readReInitProposal()
	case ProposalExternalInit:
		p.ExternalInit = r.readExternalInitProposal()
	case ProposalGroupContextExtensions:
		p.GroupContextExtensions = r.readGroupContextExtensionsProposal()
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
