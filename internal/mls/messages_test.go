package mls

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"testing"
)

// msgCodec decodes one messages.json field and re-encodes it. firstVarint
// returns the offset of the first variable-length header in the encoding,
// or -1 when the structure has none.
type msgCodec struct {
	roundTrip   func(b []byte) ([]byte, error)
	firstVarint func(b []byte) int
}

// msgBody adapts a read/append pair of a structure without its own Parse
// function (the proposal bodies).
func msgBody[T any](read func(*Reader) T, app func(T, []byte) []byte) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		r := NewReader(b)
		v := read(r)
		if err := r.Finish(); err != nil {
			return nil, err
		}
		return app(v, nil), nil
	}
}

// msgMLSMessage round-trips an MLSMessage and checks its wire format (and,
// for framed content, its content type).
func msgMLSMessage(wf WireFormat, ct ContentType) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		m, err := ParseMLSMessage(b)
		if err != nil {
			return nil, err
		}
		if m.WireFormat != wf {
			return nil, fmt.Errorf("wire format %v, want %v", m.WireFormat, wf)
		}
		if wf == WireFormatPublicMessage && m.PublicMessage.Content.ContentType != ct {
			return nil, fmt.Errorf("content type %v, want %v", m.PublicMessage.Content.ContentType, ct)
		}
		return m.Marshal(), nil
	}
}

func at(n int) func([]byte) int { return func([]byte) int { return n } }

// msgCodecs lists every field of messages.json.
var msgCodecs = map[string]msgCodec{
	"mls_welcome":     {msgMLSMessage(WireFormatWelcome, 0), at(6)},
	"mls_group_info":  {msgMLSMessage(WireFormatGroupInfo, 0), at(8)},
	"mls_key_package": {msgMLSMessage(WireFormatKeyPackage, 0), at(8)},
	"ratchet_tree": {func(b []byte) ([]byte, error) {
		t, err := ParseRatchetTree(b)
		if err != nil {
			return nil, err
		}
		return t.Marshal(), nil
	}, at(0)},
	"group_secrets": {func(b []byte) ([]byte, error) {
		g, err := ParseGroupSecrets(b)
		if err != nil {
			return nil, err
		}
		return g.Marshal(), nil
	}, at(0)},
	"add_proposal":    {msgBody((*Reader).readAddProposal, (*AddProposal).append), at(4)},
	"update_proposal": {msgBody((*Reader).readUpdateProposal, (*UpdateProposal).append), at(0)},
	"remove_proposal": {msgBody((*Reader).readRemoveProposal, (*RemoveProposal).append), at(-1)},
	"pre_shared_key_proposal": {msgBody((*Reader).readPreSharedKeyProposal, (*PreSharedKeyProposal).append),
		func(b []byte) int {
			if len(b) > 0 && PSKType(b[0]) == PSKTypeExternal {
				return 1 // psk_id
			}
			return 2 // after the usage: psk_group_id
		}},
	"re_init_proposal":       {msgBody((*Reader).readReInitProposal, (*ReInitProposal).append), at(0)},
	"external_init_proposal": {msgBody((*Reader).readExternalInitProposal, (*ExternalInitProposal).append), at(0)},
	"group_context_extensions_proposal": {msgBody((*Reader).readGroupContextExtensionsProposal,
		(*GroupContextExtensionsProposal).append), at(0)},
	"commit": {func(b []byte) ([]byte, error) {
		c, err := ParseCommit(b)
		if err != nil {
			return nil, err
		}
		return c.Marshal(), nil
	}, at(0)},
	"public_message_application": {msgMLSMessage(WireFormatPublicMessage, ContentApplication), at(4)},
	"public_message_proposal":    {msgMLSMessage(WireFormatPublicMessage, ContentProposal), at(4)},
	"public_message_commit":      {msgMLSMessage(WireFormatPublicMessage, ContentCommit), at(4)},
	"private_message":            {msgMLSMessage(WireFormatPrivateMessage, 0), at(4)},
}

// msgNonMinimal rewrites the varint header at off in a longer form than
// needed (or, for a 4-byte header, with the invalid 0b11 prefix).
func msgNonMinimal(b []byte, off int) []byte {
	out := append([]byte{}, b[:off]...)
	switch b[off] >> 6 {
	case 0:
		out = append(out, 0x40, b[off])
		return append(out, b[off+1:]...)
	case 1:
		out = append(out, 0x80, 0, b[off]&0x3f, b[off+1])
		return append(out, b[off+2:]...)
	default:
		out = append(out, b[off]|0xc0)
		return append(out, b[off+1:]...)
	}
}

// msgMutations returns inputs derived from a valid encoding that must all
// fail to decode.
func msgMutations(b []byte, firstVarint int) map[string][]byte {
	m := map[string][]byte{
		"appended": append(append([]byte{}, b...), 0),
	}
	if len(b) > 0 {
		m["truncated"] = b[:len(b)-1]
	}
	if firstVarint >= 0 && firstVarint < len(b) {
		m["non-minimal varint"] = msgNonMinimal(b, firstVarint)
		bad := append([]byte{}, b...)
		bad[firstVarint] |= 0xc0
		m["0b11 varint"] = bad
	}
	return m
}

// msgDecodeNoPanic runs fn, turning a panic into an error.
func msgDecodeNoPanic(fn func([]byte) ([]byte, error), b []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(b)
}

func TestVectorsMessages(t *testing.T) {
	runVectors(t, "messages.json", func(t *testing.T, tc *map[string]hexBytes) {
		if len(*tc) != len(msgCodecs) {
			names := make([]string, 0, len(*tc))
			for k := range *tc {
				names = append(names, k)
			}
			sort.Strings(names)
			t.Fatalf("case has fields %v, want the %d known ones", names, len(msgCodecs))
		}
		for name, codec := range msgCodecs {
			in, ok := (*tc)[name]
			if !ok {
				t.Errorf("%s: missing", name)
				continue
			}
			out, err := msgDecodeNoPanic(codec.roundTrip, in)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !bytes.Equal(out, in) {
				t.Errorf("%s: re-encoding differs\n got %x\nwant %x", name, out, in)
			}
			for what, bad := range msgMutations(in, codec.firstVarint(in)) {
				_, err := msgDecodeNoPanic(codec.roundTrip, bad)
				if !errors.Is(err, ErrDecode) {
					t.Errorf("%s %s: got %v, want an ErrDecode", name, what, err)
				}
			}
		}
	})
}
