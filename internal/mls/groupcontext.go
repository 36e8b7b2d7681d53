package mls

// GroupContext (RFC 9420 §8.1) summarizes the state of a group in one epoch.
// Its serialization feeds the key schedule and is signed or MACed by most
// messages, so its encoding must be exact.

import "fmt"

// GroupContext is the RFC 9420 §8.1 GroupContext.
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              []Extension
}

// append appends the serialized GroupContext.
func (gc *GroupContext) append(b []byte) []byte {
	b = AppendUint16(b, uint16(gc.Version))
	b = AppendUint16(b, uint16(gc.CipherSuite))
	b = AppendOpaque(b, gc.GroupID)
	b = AppendUint64(b, gc.Epoch)
	b = AppendOpaque(b, gc.TreeHash)
	b = AppendOpaque(b, gc.ConfirmedTranscriptHash)
	return AppendExtensions(b, gc.Extensions)
}

// Marshal returns the serialized GroupContext.
func (gc *GroupContext) Marshal() []byte { return gc.append(nil) }

// readGroupContext reads a GroupContext.
func (r *Reader) readGroupContext() GroupContext {
	var gc GroupContext
	gc.Version = ProtocolVersion(r.Uint16())
	gc.CipherSuite = CipherSuite(r.Uint16())
	gc.GroupID = r.Opaque()
	gc.Epoch = r.Uint64()
	gc.TreeHash = r.Opaque()
	gc.ConfirmedTranscriptHash = r.Opaque()
	gc.Extensions = r.ReadExtensions()
	if r.Err() == nil && gc.Version != MLS10 {
		r.Fail("GroupContext: unsupported protocol version %d", gc.Version)
	}
	return gc
}

// ParseGroupContext decodes a serialized GroupContext. Errors match
// ErrDecode.
func ParseGroupContext(b []byte) (*GroupContext, error) {
	r := NewReader(b)
	gc := r.readGroupContext()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("mls: GroupContext: %w", err)
	}
	return &gc, nil
}
