package mls

import "fmt"

// This file is the Commit of RFC 9420 §12.4 and the UpdatePath of §7.6 it
// may carry.

// HPKECiphertext is the output of a one-shot HPKE encryption (RFC 9420 §7.6):
// the KEM's encapsulated key and the AEAD ciphertext.
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// append appends the TLS encoding of c.
func (c *HPKECiphertext) append(b []byte) []byte {
	b = AppendOpaque(b, c.KEMOutput)
	return AppendOpaque(b, c.Ciphertext)
}

// Marshal returns the TLS encoding of c.
func (c *HPKECiphertext) Marshal() []byte { return c.append(nil) }

// readHPKECiphertext reads an HPKECiphertext.
func (r *Reader) readHPKECiphertext() HPKECiphertext {
	return HPKECiphertext{KEMOutput: r.Opaque(), Ciphertext: r.Opaque()}
}

// UpdatePathNode is one node of an UpdatePath: the new public key of a node
// on the sender's filtered direct path and the path secret encrypted to each
// node of the copath child's resolution, in resolution order.
type UpdatePathNode struct {
	EncryptionKey       []byte
	EncryptedPathSecret []HPKECiphertext
}

// append appends the TLS encoding of n.
func (n *UpdatePathNode) append(b []byte) []byte {
	b = AppendOpaque(b, n.EncryptionKey)
	return AppendVector(b, func(b []byte) []byte {
		for i := range n.EncryptedPathSecret {
			b = n.EncryptedPathSecret[i].append(b)
		}
		return b
	})
}

// readUpdatePathNode reads an UpdatePathNode.
func (r *Reader) readUpdatePathNode() UpdatePathNode {
	n := UpdatePathNode{EncryptionKey: r.Opaque(), EncryptedPathSecret: []HPKECiphertext{}}
	r.Vector(func(r *Reader) {
		n.EncryptedPathSecret = append(n.EncryptedPathSecret, r.readHPKECiphertext())
	})
	return n
}

// UpdatePath is the sender's new leaf and the new keys along its filtered
// direct path (RFC 9420 §7.6).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// append appends the TLS encoding of p.
func (p *UpdatePath) append(b []byte) []byte {
	b = p.LeafNode.append(b)
	return AppendVector(b, func(b []byte) []byte {
		for i := range p.Nodes {
			b = p.Nodes[i].append(b)
		}
		return b
	})
}

// Marshal returns the TLS encoding of p.
func (p *UpdatePath) Marshal() []byte { return p.append(nil) }

// readUpdatePath reads an UpdatePath.
func (r *Reader) readUpdatePath() UpdatePath {
	p := UpdatePath{LeafNode: r.readLeafNode(), Nodes: []UpdatePathNode{}}
	r.Vector(func(r *Reader) {
		p.Nodes = append(p.Nodes, r.readUpdatePathNode())
	})
	return p
}

// ParseUpdatePath decodes one UpdatePath that fills b.
func ParseUpdatePath(b []byte) (*UpdatePath, error) {
	r := NewReader(b)
	p := r.readUpdatePath()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing UpdatePath: %w", err)
	}
	return &p, nil
}

// Commit applies a list of proposals and, when Path is set, refreshes the
// committer's path in the tree (RFC 9420 §12.4).
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// append appends the TLS encoding of c.
func (c *Commit) append(b []byte) []byte {
	b = AppendVector(b, func(b []byte) []byte {
		for i := range c.Proposals {
			b = c.Proposals[i].append(b)
		}
		return b
	})
	return AppendOptional(b, c.Path != nil, func(b []byte) []byte { return c.Path.append(b) })
}

// Marshal returns the TLS encoding of c.
func (c *Commit) Marshal() []byte { return c.append(nil) }

// readCommit reads a Commit.
func (r *Reader) readCommit() Commit {
	c := Commit{Proposals: []ProposalOrRef{}}
	r.Vector(func(r *Reader) {
		c.Proposals = append(c.Proposals, r.readProposalOrRef())
	})
	r.Optional(func(r *Reader) {
		p := r.readUpdatePath()
		c.Path = &p
	})
	return c
}

// ParseCommit decodes one Commit that fills b.
func ParseCommit(b []byte) (*Commit, error) {
	r := NewReader(b)
	c := r.readCommit()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing Commit: %w", err)
	}
	return &c, nil
}
