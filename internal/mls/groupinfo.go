package mls

import "fmt"

// This file is the GroupInfo of RFC 9420 §12.4.3: the signed description of
// a group's current epoch that a joiner starts from.

// GroupInfo describes a group at one epoch (RFC 9420 §12.4.3). Signer is the
// leaf of the member who signed it; Signature covers every other field
// (GroupInfoTBS). Extensions here, unlike those of the group context, may be
// unknown to a joiner, who ignores them.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      []Extension
	ConfirmationTag []byte
	Signer          LeafIndex
	Signature       []byte
}

// appendTBS appends GroupInfoTBS: every field but the signature.
func (gi *GroupInfo) appendTBS(b []byte) []byte {
	b = gi.GroupContext.append(b)
	b = AppendExtensions(b, gi.Extensions)
	b = AppendOpaque(b, gi.ConfirmationTag)
	return AppendUint32(b, uint32(gi.Signer))
}

// append appends the TLS encoding of gi.
func (gi *GroupInfo) append(b []byte) []byte {
	b = gi.appendTBS(b)
	return AppendOpaque(b, gi.Signature)
}

// Marshal returns the TLS encoding of gi.
func (gi *GroupInfo) Marshal() []byte { return gi.append(nil) }

// readGroupInfo reads a GroupInfo.
func (r *Reader) readGroupInfo() GroupInfo {
	var gi GroupInfo
	gi.GroupContext = r.readGroupContext()
	gi.Extensions = r.ReadExtensions()
	gi.ConfirmationTag = r.Opaque()
	gi.Signer = LeafIndex(r.Uint32())
	gi.Signature = r.Opaque()
	return gi
}

// ParseGroupInfo decodes one GroupInfo that fills b (the bare struct, not an
// MLSMessage; see ParseMLSMessage for the framed form).
func ParseGroupInfo(b []byte) (*GroupInfo, error) {
	r := NewReader(b)
	gi := r.readGroupInfo()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing GroupInfo: %w", err)
	}
	return &gi, nil
}

// Sign fills gi.Signature with SignWithLabel(priv, "GroupInfoTBS", ...).
func (gi *GroupInfo) Sign(s Suite, priv []byte) error {
	sig, err := SignWithLabel(s, priv, "GroupInfoTBS", gi.appendTBS(nil))
	if err != nil {
		return fmt.Errorf("signing GroupInfo: %w", err)
	}
	gi.Signature = sig
	return nil
}

// VerifySignature checks gi.Signature against pub, the signature key of the
// leaf gi.Signer. A bad signature matches ErrInvalidSignature.
func (gi *GroupInfo) VerifySignature(s Suite, pub []byte) error {
	if err := VerifyWithLabel(s, pub, "GroupInfoTBS", gi.appendTBS(nil), gi.Signature); err != nil {
		return fmt.Errorf("GroupInfo signature: %w", err)
	}
	return nil
}

// VerifyConfirmationTag checks gi.ConfirmationTag against the epoch's
// confirmation key and the group context's confirmed transcript hash.
func (gi *GroupInfo) VerifyConfirmationTag(s Suite, confirmationKey []byte) error {
	return VerifyConfirmationTag(s, confirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
}
