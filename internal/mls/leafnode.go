package mls

import (
	"bytes"
	"fmt"
	"slices"
)

// This file is the LeafNode of RFC 9420 §7.2: the public state of one member
// in the ratchet tree, signed by that member.

// LeafNodeSource says how a LeafNode came to be (RFC 9420 §7.2).
type LeafNodeSource uint8

// The leaf node sources of RFC 9420 §7.2.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

func (s LeafNodeSource) String() string {
	switch s {
	case LeafNodeSourceKeyPackage:
		return "key_package"
	case LeafNodeSourceUpdate:
		return "update"
	case LeafNodeSourceCommit:
		return "commit"
	default:
		return fmt.Sprintf("leaf_node_source(%d)", uint8(s))
	}
}

// Capabilities lists what a client supports (RFC 9420 §7.2). The lists may
// contain values this package does not know, such as GREASE values.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// Lifetime is the validity window of a KeyPackage's leaf, in seconds since
// the Unix epoch (RFC 9420 §7.2).
type Lifetime struct {
	NotBefore, NotAfter uint64
}

// LeafNode is the public state of a member (RFC 9420 §7.2). Lifetime is set
// exactly when Source is LeafNodeSourceKeyPackage and ParentHash exactly when
// Source is LeafNodeSourceCommit.
type LeafNode struct {
	EncryptionKey []byte // HPKE public key
	SignatureKey  []byte
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      *Lifetime
	ParentHash    []byte
	Extensions    []Extension
	Signature     []byte
}

func appendUint16List[T ~uint16](b []byte, vs []T) []byte {
	return AppendVector(b, func(b []byte) []byte {
		for _, v := range vs {
			b = AppendUint16(b, uint16(v))
		}
		return b
	})
}

func readUint16List[T ~uint16](r *Reader) []T {
	vs := []T{}
	r.Vector(func(r *Reader) { vs = append(vs, T(r.Uint16())) })
	return vs
}

func (c *Capabilities) append(b []byte) []byte {
	b = appendUint16List(b, c.Versions)
	b = appendUint16List(b, c.CipherSuites)
	b = appendUint16List(b, c.Extensions)
	b = appendUint16List(b, c.Proposals)
	b = appendUint16List(b, c.Credentials)
	return b
}

func (r *Reader) readCapabilities() Capabilities {
	return Capabilities{
		Versions:     readUint16List[ProtocolVersion](r),
		CipherSuites: readUint16List[CipherSuite](r),
		Extensions:   readUint16List[ExtensionType](r),
		Proposals:    readUint16List[ProposalType](r),
		Credentials:  readUint16List[CredentialType](r),
	}
}

// appendContent appends the fields shared by LeafNode and LeafNodeTBS.
func (ln *LeafNode) appendContent(b []byte) []byte {
	b = AppendOpaque(b, ln.EncryptionKey)
	b = AppendOpaque(b, ln.SignatureKey)
	b = ln.Credential.append(b)
	b = ln.Capabilities.append(b)
	b = AppendUint8(b, uint8(ln.Source))
	switch ln.Source {
	case LeafNodeSourceKeyPackage:
		var lt Lifetime
		if ln.Lifetime != nil {
			lt = *ln.Lifetime
		}
		b = AppendUint64(b, lt.NotBefore)
		b = AppendUint64(b, lt.NotAfter)
	case LeafNodeSourceCommit:
		b = AppendOpaque(b, ln.ParentHash)
	}
	return AppendExtensions(b, ln.Extensions)
}

// append appends the TLS encoding of ln.
func (ln *LeafNode) append(b []byte) []byte {
	b = ln.appendContent(b)
	return AppendOpaque(b, ln.Signature)
}

// Marshal returns the TLS encoding of ln.
func (ln *LeafNode) Marshal() []byte { return ln.append(nil) }

// readLeafNode reads a LeafNode.
func (r *Reader) readLeafNode() LeafNode {
	var ln LeafNode
	ln.EncryptionKey = r.Opaque()
	ln.SignatureKey = r.Opaque()
	ln.Credential = r.readCredential()
	ln.Capabilities = r.readCapabilities()
	ln.Source = LeafNodeSource(r.Uint8())
	if r.Err() != nil {
		return ln
	}
	switch ln.Source {
	case LeafNodeSourceKeyPackage:
		ln.Lifetime = &Lifetime{NotBefore: r.Uint64(), NotAfter: r.Uint64()}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		ln.ParentHash = r.Opaque()
	default:
		r.Fail("invalid leaf node source %d", uint8(ln.Source))
		return ln
	}
	ln.Extensions = r.ReadExtensions()
	ln.Signature = r.Opaque()
	return ln
}

// ParseLeafNode decodes one LeafNode that fills b.
func ParseLeafNode(b []byte) (*LeafNode, error) {
	r := NewReader(b)
	ln := r.readLeafNode()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing LeafNode: %w", err)
	}
	return &ln, nil
}

// Clone returns a deep copy of ln.
func (ln *LeafNode) Clone() *LeafNode {
	c := *ln
	c.EncryptionKey = bytes.Clone(ln.EncryptionKey)
	c.SignatureKey = bytes.Clone(ln.SignatureKey)
	c.Credential.Identity = bytes.Clone(ln.Credential.Identity)
	if ln.Credential.Certificates != nil {
		c.Credential.Certificates = make([][]byte, len(ln.Credential.Certificates))
		for i, cert := range ln.Credential.Certificates {
			c.Credential.Certificates[i] = bytes.Clone(cert)
		}
	}
	c.Capabilities = Capabilities{
		Versions:     slices.Clone(ln.Capabilities.Versions),
		CipherSuites: slices.Clone(ln.Capabilities.CipherSuites),
		Extensions:   slices.Clone(ln.Capabilities.Extensions),
		Proposals:    slices.Clone(ln.Capabilities.Proposals),
		Credentials:  slices.Clone(ln.Capabilities.Credentials),
	}
	if ln.Lifetime != nil {
		lt := *ln.Lifetime
		c.Lifetime = &lt
	}
	c.ParentHash = bytes.Clone(ln.ParentHash)
	if ln.Extensions != nil {
		c.Extensions = make([]Extension, len(ln.Extensions))
		for i, e := range ln.Extensions {
			c.Extensions[i] = Extension{Type: e.Type, Data: bytes.Clone(e.Data)}
		}
	}
	c.Signature = bytes.Clone(ln.Signature)
	return &c
}

// Equal reports whether ln and o encode to the same bytes.
func (ln *LeafNode) Equal(o *LeafNode) bool {
	return bytes.Equal(ln.Marshal(), o.Marshal())
}

// TBS returns the LeafNodeTBS encoding that the signature covers (RFC 9420
// §7.2). For the update and commit sources it ends with groupID and the
// leaf's index; for key_package leaves both are ignored.
func (ln *LeafNode) TBS(groupID []byte, leaf LeafIndex) []byte {
	b := ln.appendContent(nil)
	switch ln.Source {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		b = AppendOpaque(b, groupID)
		b = AppendUint32(b, uint32(leaf))
	}
	return b
}

// leafNodeSignLabel is the label of SignWithLabel for a LeafNodeTBS.
const leafNodeSignLabel = "LeafNodeTBS"

// Sign sets ln.Signature to SignWithLabel(priv, "LeafNodeTBS", TBS). For the
// update and commit sources the signature binds groupID and leaf.
func (ln *LeafNode) Sign(s Suite, priv, groupID []byte, leaf LeafIndex) error {
	return ln.signWith(func(label string, content []byte) ([]byte, error) {
		return SignWithLabel(s, priv, label, content)
	}, groupID, leaf)
}

// signWith is Sign with the signature made by sign.
func (ln *LeafNode) signWith(sign signFunc, groupID []byte, leaf LeafIndex) error {
	sig, err := sign(leafNodeSignLabel, ln.TBS(groupID, leaf))
	if err != nil {
		return fmt.Errorf("signing LeafNode: %w", err)
	}
	ln.Signature = sig
	return nil
}

// VerifySignature checks ln.Signature against ln.SignatureKey. groupID and
// leaf are used for the update and commit sources only.
func (ln *LeafNode) VerifySignature(s Suite, groupID []byte, leaf LeafIndex) error {
	if err := VerifyWithLabel(s, ln.SignatureKey, leafNodeSignLabel, ln.TBS(groupID, leaf), ln.Signature); err != nil {
		return fmt.Errorf("LeafNode signature: %w", err)
	}
	return nil
}
