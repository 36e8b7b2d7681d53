package server

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// hdrHex decodes a hex string of the vectors.
func hdrHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector: %v", err)
	}
	return b
}

// hdrVector is one case of testdata/message-protection.json.
type hdrVector struct {
	GroupID         string `json:"group_id"`
	Epoch           uint64 `json:"epoch"`
	ProposalPub     string `json:"proposal_pub"`
	ProposalPriv    string `json:"proposal_priv"`
	CommitPub       string `json:"commit_pub"`
	CommitPriv      string `json:"commit_priv"`
	ApplicationPriv string `json:"application_priv"`
}

func hdrLoad(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// The RFC 9420 message-protection vectors: every protected message parses to
// the case's group id and epoch, with the right wire format and content.
func TestMLSHeaderVectors(t *testing.T) {
	var cases []hdrVector
	hdrLoad(t, "message-protection.json", &cases)
	if len(cases) == 0 {
		t.Fatal("no vectors")
	}
	for i, c := range cases {
		for _, m := range []struct {
			name        string
			msg         string
			wireFormat  uint16
			contentType uint8
		}{
			{"proposal_pub", c.ProposalPub, wireFormatPublicMessage, contentTypeProposal},
			{"proposal_priv", c.ProposalPriv, wireFormatPrivateMessage, contentTypeProposal},
			{"commit_pub", c.CommitPub, wireFormatPublicMessage, contentTypeCommit},
			{"commit_priv", c.CommitPriv, wireFormatPrivateMessage, contentTypeCommit},
			{"application_priv", c.ApplicationPriv, wireFormatPrivateMessage, contentTypeApplication},
		} {
			t.Run(fmt.Sprintf("%d/%s", i, m.name), func(t *testing.T) {
				h, err := parseMLSHeader(hdrHex(t, m.msg))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(h.groupID, hdrHex(t, c.GroupID)) || h.epoch != c.Epoch ||
					h.wireFormat != m.wireFormat || h.contentType != m.contentType {
					t.Fatalf("header = {wire format %d, group %x, epoch %d, content %d}, want {%d, %s, %d, %d}",
						h.wireFormat, h.groupID, h.epoch, h.contentType, m.wireFormat, c.GroupID, c.Epoch, m.contentType)
				}
				if m.wireFormat == wireFormatPublicMessage && h.senderType != senderTypeMember {
					t.Fatalf("sender type %d, want member", h.senderType)
				}
			})
		}
	}
}

// The messages.json vectors: commits, proposals and private messages parse;
// an application PublicMessage and a Welcome are refused; a Welcome passes
// checkWelcomeHeader and nothing else does.
func TestMLSHeaderMessagesVectors(t *testing.T) {
	var cases []map[string]string
	hdrLoad(t, "messages-headers.json", &cases)
	if len(cases) == 0 {
		t.Fatal("no vectors")
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			for name, want := range map[string]uint8{
				"public_message_proposal": contentTypeProposal,
				"public_message_commit":   contentTypeCommit,
			} {
				h, err := parseMLSHeader(hdrHex(t, c[name]))
				if err != nil || h.contentType != want || h.wireFormat != wireFormatPublicMessage {
					t.Fatalf("%s: %+v, %v; want content type %d", name, h, err, want)
				}
			}
			priv := hdrHex(t, c["private_message"])
			if h, err := parseMLSHeader(priv); err != nil || h.wireFormat != wireFormatPrivateMessage {
				t.Fatalf("private_message: %+v, %v", h, err)
			}
			if _, err := parseMLSHeader(hdrHex(t, c["public_message_application"])); !errors.Is(err, errMLSHeader) {
				t.Fatalf("public_message_application: err = %v, want a refusal", err)
			}
			w := hdrHex(t, c["mls_welcome"])
			if _, err := parseMLSHeader(w); !errors.Is(err, errMLSHeader) {
				t.Fatalf("mls_welcome as a group message: err = %v, want a refusal", err)
			}
			if err := checkWelcomeHeader(w); err != nil {
				t.Fatalf("mls_welcome: %v", err)
			}
			if err := checkWelcomeHeader(priv); !errors.Is(err, errMLSHeader) {
				t.Fatalf("private_message as a welcome: err = %v, want a refusal", err)
			}
		})
	}
}

// hdrBuild writes a header by hand: a PublicMessage with the given sender
// or a PrivateMessage (senderType 0).
func hdrBuild(wireFormat uint16, groupID []byte, epoch uint64, senderType uint8, contentType uint8) []byte {
	b := binary.BigEndian.AppendUint16(nil, 1)
	b = binary.BigEndian.AppendUint16(b, wireFormat)
	b = append(b, byte(len(groupID)))
	b = append(b, groupID...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	if wireFormat == wireFormatPublicMessage {
		b = append(b, senderType)
		if senderType == senderTypeMember || senderType == senderTypeExternal {
			b = append(b, 0, 0, 0, 7)
		}
		b = append(b, 0) // authenticated_data
	}
	return append(b, contentType)
}

func TestMLSHeaderCases(t *testing.T) {
	g := []byte("group")
	long := bytes.Repeat([]byte{7}, 300)
	longGroup := append([]byte{0, 1, 0, 2, 0x41, 0x2c}, long...) // 2-byte length 300
	longGroup = binary.BigEndian.AppendUint64(longGroup, 9)
	longGroup = append(longGroup, contentTypeCommit)
	for _, tc := range []struct {
		name   string
		msg    []byte
		ok     bool
		sender uint8
	}{
		{"public member commit", hdrBuild(1, g, 3, senderTypeMember, contentTypeCommit), true, senderTypeMember},
		{"public member proposal", hdrBuild(1, g, 3, senderTypeMember, contentTypeProposal), true, senderTypeMember},
		{"public external proposal", hdrBuild(1, g, 3, senderTypeExternal, contentTypeProposal), true, senderTypeExternal},
		{"public new member proposal", hdrBuild(1, g, 3, senderTypeNewMemberProposal, contentTypeProposal), true, senderTypeNewMemberProposal},
		{"public new member commit", hdrBuild(1, g, 3, senderTypeNewMemberCommit, contentTypeCommit), true, senderTypeNewMemberCommit},
		{"private application", hdrBuild(2, g, 3, 0, contentTypeApplication), true, 0},
		{"private commit, 300-byte group id", longGroup, true, 0},
		{"public application", hdrBuild(1, g, 3, senderTypeMember, contentTypeApplication), false, 0},
		{"external commit", hdrBuild(1, g, 3, senderTypeExternal, contentTypeCommit), false, 0},
		{"new member commit proposing", hdrBuild(1, g, 3, senderTypeNewMemberCommit, contentTypeProposal), false, 0},
		{"new member proposal committing", hdrBuild(1, g, 3, senderTypeNewMemberProposal, contentTypeCommit), false, 0},
		{"sender type 0", hdrBuild(1, g, 3, 0, contentTypeCommit), false, 0},
		{"sender type 5", hdrBuild(1, g, 3, 5, contentTypeCommit), false, 0},
		{"content type 0", hdrBuild(2, g, 3, 0, 0), false, 0},
		{"content type 4", hdrBuild(2, g, 3, 0, 4), false, 0},
		{"empty group id", hdrBuild(2, nil, 3, 0, contentTypeCommit), false, 0},
		{"version 2", append([]byte{0, 2}, hdrBuild(2, g, 3, 0, 3)[2:]...), false, 0},
		{"wire format welcome", hdrBuild(3, g, 3, 0, 3), false, 0},
		{"wire format 0", hdrBuild(0, g, 3, 0, 3), false, 0},
		{"empty", nil, false, 0},
		{"truncated version", []byte{0}, false, 0},
		{"truncated epoch", hdrBuild(2, g, 3, 0, 3)[:12], false, 0},
		{"truncated content type", hdrBuild(2, g, 3, 0, 3)[:18], false, 0},
		{"truncated leaf index", hdrBuild(1, g, 3, senderTypeMember, 3)[:21], false, 0},
		{"group id longer than message", []byte{0, 1, 0, 2, 0x3f, 1, 2}, false, 0},
		{"reserved varint prefix", []byte{0, 1, 0, 2, 0xc0, 0, 0, 0, 1}, false, 0},
		{"non-minimal 2-byte length", append([]byte{0, 1, 0, 2, 0x40, 5}, hdrBuild(2, g, 3, 0, 3)[5:]...), false, 0},
		{"non-minimal 4-byte length", append([]byte{0, 1, 0, 2, 0x80, 0, 0, 5}, hdrBuild(2, g, 3, 0, 3)[5:]...), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseMLSHeader(tc.msg)
			if !tc.ok {
				if !errors.Is(err, errMLSHeader) {
					t.Fatalf("err = %v, want a malformed header error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.senderType != tc.sender || h.size != len(tc.msg) {
				t.Fatalf("header %+v: sender type %d (want %d), size %d (want %d)", h, h.senderType, tc.sender, h.size, len(tc.msg))
			}
		})
	}
}

func TestWelcomeHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		ok   bool
	}{
		{"welcome", []byte{0, 1, 0, 3, 0, 1, 0}, true},
		{"no body", []byte{0, 1, 0, 3}, false},
		{"empty", nil, false},
		{"truncated", []byte{0, 1, 0}, false},
		{"version 0", []byte{0, 0, 0, 3, 1}, false},
		{"private message", []byte{0, 1, 0, 2, 1}, false},
		{"group info", []byte{0, 1, 0, 4, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkWelcomeHeader(tc.msg)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, errMLSHeader)) {
				t.Fatalf("err = %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

// FuzzMLSHeader: parsing never panics; a parsed header lies inside the
// input, its group id is not empty, its content type is known, the bytes up
// to content_type parse to the same header, and every shorter prefix fails.
func FuzzMLSHeader(f *testing.F) {
	var cases []hdrVector
	hdrLoad(f, "message-protection.json", &cases)
	for _, c := range cases {
		for _, m := range []string{c.ProposalPub, c.ProposalPriv, c.CommitPub, c.CommitPriv, c.ApplicationPriv} {
			f.Add(hdrHex(f, m))
		}
	}
	var msgs []map[string]string
	hdrLoad(f, "messages-headers.json", &msgs)
	for _, c := range msgs[:4] {
		for _, m := range c {
			f.Add(hdrHex(f, m))
		}
	}
	f.Add(hdrBuild(1, []byte("g"), 1, senderTypeExternal, contentTypeProposal))
	f.Add(hdrBuild(1, []byte("g"), 1, senderTypeNewMemberCommit, contentTypeCommit))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseMLSHeader(b)
		werr := checkWelcomeHeader(b)
		if err != nil {
			if !errors.Is(err, errMLSHeader) {
				t.Fatalf("error %v does not wrap errMLSHeader", err)
			}
			return
		}
		if werr == nil {
			t.Fatal("a message is both a group message and a Welcome")
		}
		if h.size < 4 || h.size > len(b) || len(h.groupID) == 0 || h.groupID == nil {
			t.Fatalf("header %+v out of bounds of %d bytes", h, len(b))
		}
		switch h.contentType {
		case contentTypeApplication, contentTypeProposal, contentTypeCommit:
		default:
			t.Fatalf("content type %d", h.contentType)
		}
		again, err := parseMLSHeader(b[:h.size])
		if err != nil || !bytes.Equal(again.groupID, h.groupID) || again.epoch != h.epoch ||
			again.contentType != h.contentType || again.wireFormat != h.wireFormat || again.senderType != h.senderType {
			t.Fatalf("prefix parses to %+v, %v; want %+v", again, err, h)
		}
		for n := range h.size {
			if _, err := parseMLSHeader(b[:n]); err == nil {
				t.Fatalf("prefix of %d bytes (header is %d) parses", n, h.size)
			}
		}
	})
}
