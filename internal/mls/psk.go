package mls

// Pre-shared keys (RFC 9420 §8.4): how a PSK is named on the wire
// (PreSharedKeyID) and how several PSKs combine into the psk_secret that
// enters the key schedule.

import "fmt"

// PSKType says where a PSK comes from.
type PSKType uint8

// The PSK types of RFC 9420 §8.4.
const (
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage says what a resumption PSK is used for.
type ResumptionPSKUsage uint8

// The resumption PSK usages of RFC 9420 §8.4.
const (
	ResumptionPSKApplication ResumptionPSKUsage = 1
	ResumptionPSKReInit      ResumptionPSKUsage = 2
	ResumptionPSKBranch      ResumptionPSKUsage = 3
)

// PreSharedKeyID names a PSK. For an external PSK, PSKID is set; for a
// resumption PSK, Usage, GroupID and Epoch are. Nonce is always present.
type PreSharedKeyID struct {
	Type    PSKType
	PSKID   []byte
	Usage   ResumptionPSKUsage
	GroupID []byte
	Epoch   uint64
	Nonce   []byte
}

// append appends the serialized PreSharedKeyID.
func (p *PreSharedKeyID) append(b []byte) []byte {
	b = AppendUint8(b, uint8(p.Type))
	switch p.Type {
	case PSKTypeExternal:
		b = AppendOpaque(b, p.PSKID)
	case PSKTypeResumption:
		b = AppendUint8(b, uint8(p.Usage))
		b = AppendOpaque(b, p.GroupID)
		b = AppendUint64(b, p.Epoch)
	}
	return AppendOpaque(b, p.Nonce)
}

// Marshal returns the serialized PreSharedKeyID.
func (p *PreSharedKeyID) Marshal() []byte { return p.append(nil) }

// readPreSharedKeyID reads a PreSharedKeyID.
func (r *Reader) readPreSharedKeyID() PreSharedKeyID {
	var p PreSharedKeyID
	p.Type = PSKType(r.Uint8())
	switch p.Type {
	case PSKTypeExternal:
		p.PSKID = r.Opaque()
	case PSKTypeResumption:
		p.Usage = ResumptionPSKUsage(r.Uint8())
		if r.Err() == nil && (p.Usage < ResumptionPSKApplication || p.Usage > ResumptionPSKBranch) {
			r.Fail("PreSharedKeyID: invalid resumption usage %d", p.Usage)
		}
		p.GroupID = r.Opaque()
		p.Epoch = r.Uint64()
	default:
		r.Fail("PreSharedKeyID: invalid psktype %d", p.Type)
	}
	p.Nonce = r.Opaque()
	return p
}

// ParsePreSharedKeyID decodes a serialized PreSharedKeyID. Errors match
// ErrDecode.
func ParsePreSharedKeyID(b []byte) (*PreSharedKeyID, error) {
	r := NewReader(b)
	p := r.readPreSharedKeyID()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("mls: PreSharedKeyID: %w", err)
	}
	return &p, nil
}

// PSKSecret combines PSKs into the psk_secret of RFC 9420 §8.4. ids[i] names
// psks[i]; with no PSKs the result is Nh zero bytes.
func PSKSecret(s Suite, ids []PreSharedKeyID, psks [][]byte) ([]byte, error) {
	if len(ids) != len(psks) {
		return nil, fmt.Errorf("mls: PSKSecret: %d ids for %d keys", len(ids), len(psks))
	}
	if len(ids) > 0xffff {
		return nil, fmt.Errorf("mls: PSKSecret: %d PSKs is too many", len(ids))
	}
	nh := s.HashSize()
	secret := make([]byte, nh)
	zero := make([]byte, nh)
	for i := range ids {
		extracted := s.Extract(zero, psks[i])
		label := ids[i].append(nil)
		label = AppendUint16(label, uint16(i))
		label = AppendUint16(label, uint16(len(ids)))
		input, err := ExpandWithLabel(s, extracted, "derived psk", label, nh)
		clear(extracted)
		if err != nil {
			return nil, fmt.Errorf("mls: PSKSecret: %w", err)
		}
		next := s.Extract(input, secret)
		clear(input)
		clear(secret)
		secret = next
	}
	return secret, nil
}
