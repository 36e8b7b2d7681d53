package mls

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for every message decoder. Each is seeded from the vectors
// and checks that decoding never panics, that failures match ErrDecode, and
// that a successful decode re-encodes to exactly the input (and so decodes
// again to the same value).

// fuzzMessages returns the messages.json cases.
func fuzzMessages(f *testing.F) []map[string]hexBytes {
	f.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "messages.json"))
	if err != nil {
		f.Fatal(err)
	}
	var cases []map[string]hexBytes
	if err := json.Unmarshal(raw, &cases); err != nil {
		f.Fatal(err)
	}
	return cases
}

// fuzzSeed adds field of every messages.json case, transformed by fn (nil
// results are skipped).
func fuzzSeed(f *testing.F, cases []map[string]hexBytes, field string, fn func([]byte) []byte) {
	f.Helper()
	for _, c := range cases {
		b, ok := c[field]
		if !ok {
			f.Fatalf("messages.json has no field %s", field)
		}
		if fn != nil {
			b = fn(b)
		}
		if b != nil {
			f.Add([]byte(b))
		}
	}
}

// fuzzStrip drops the 4-byte MLSMessage header (version, wire format).
func fuzzStrip(b []byte) []byte {
	if len(b) < 4 {
		return nil
	}
	return b[4:]
}

// fuzzRoundTrip runs one decode/encode check.
func fuzzRoundTrip[T any](t *testing.T, b []byte, parse func([]byte) (T, error), marshal func(T) []byte) {
	v, err := parse(b)
	if err != nil {
		if !errors.Is(err, ErrDecode) {
			t.Fatalf("error does not match ErrDecode: %v", err)
		}
		return
	}
	enc := marshal(v)
	if !bytes.Equal(enc, b) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, b)
	}
	v2, err := parse(enc)
	if err != nil {
		t.Fatalf("re-encoding does not decode: %v", err)
	}
	if !bytes.Equal(marshal(v2), enc) {
		t.Fatal("second decode differs")
	}
}

func FuzzMLSMessage(f *testing.F) {
	cases := fuzzMessages(f)
	for _, field := range []string{"mls_welcome", "mls_group_info", "mls_key_package",
		"public_message_application", "public_message_proposal", "public_message_commit", "private_message"} {
		fuzzSeed(f, cases, field, nil)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseMLSMessage, (*MLSMessage).Marshal)
	})
}

func FuzzKeyPackage(f *testing.F) {
	cases := fuzzMessages(f)
	fuzzSeed(f, cases, "mls_key_package", fuzzStrip)
	fuzzSeed(f, cases, "add_proposal", nil) // an Add is a bare KeyPackage
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseKeyPackage, (*KeyPackage).Marshal)
	})
}

func FuzzWelcome(f *testing.F) {
	fuzzSeed(f, fuzzMessages(f), "mls_welcome", fuzzStrip)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseWelcome, (*Welcome).Marshal)
	})
}

func FuzzGroupSecrets(f *testing.F) {
	fuzzSeed(f, fuzzMessages(f), "group_secrets", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseGroupSecrets, (*GroupSecrets).Marshal)
	})
}

func FuzzGroupInfo(f *testing.F) {
	fuzzSeed(f, fuzzMessages(f), "mls_group_info", fuzzStrip)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseGroupInfo, (*GroupInfo).Marshal)
	})
}

// FuzzRatchetTreeMessages fuzzes the ratchet_tree extension decoder from the
// trees of messages.json (FuzzRatchetTree starts from the tree vectors).
func FuzzRatchetTreeMessages(f *testing.F) {
	fuzzSeed(f, fuzzMessages(f), "ratchet_tree", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseRatchetTree, (*RatchetTree).Marshal)
	})
}

func FuzzProposal(f *testing.F) {
	cases := fuzzMessages(f)
	for field, pt := range map[string]ProposalType{
		"add_proposal":                      ProposalAdd,
		"update_proposal":                   ProposalUpdate,
		"remove_proposal":                   ProposalRemove,
		"pre_shared_key_proposal":           ProposalPreSharedKey,
		"re_init_proposal":                  ProposalReInit,
		"external_init_proposal":            ProposalExternalInit,
		"group_context_extensions_proposal": ProposalGroupContextExtensions,
	} {
		fuzzSeed(f, cases, field, func(b []byte) []byte { return append(AppendUint16(nil, uint16(pt)), b...) })
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseProposal, (*Proposal).Marshal)
	})
}

func FuzzCommit(f *testing.F) {
	fuzzSeed(f, fuzzMessages(f), "commit", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseCommit, (*Commit).Marshal)
	})
}

func FuzzUpdatePath(f *testing.F) {
	fuzzSeed(f, fuzzMessages(f), "commit", func(b []byte) []byte {
		c, err := ParseCommit(b)
		if err != nil || c.Path == nil {
			return nil
		}
		return c.Path.Marshal()
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseUpdatePath, (*UpdatePath).Marshal)
	})
}

func FuzzAuthenticatedContent(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("testdata", "transcript-hashes.json"))
	if err != nil {
		f.Fatal(err)
	}
	var cases []transcriptCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add([]byte(c.AuthenticatedContent))
	}
	// Public messages of messages.json, re-framed as AuthenticatedContent:
	// the wire format followed by the content and auth (without the
	// membership tag, which an AuthenticatedContent does not carry).
	fuzzSeed(f, fuzzMessages(f), "public_message_commit", func(b []byte) []byte {
		m, err := ParseMLSMessage(b)
		if err != nil {
			return nil
		}
		ac := AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: m.PublicMessage.Content, Auth: m.PublicMessage.Auth}
		return ac.Marshal()
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, ParseAuthenticatedContent, (*AuthenticatedContent).Marshal)
	})
}

// FuzzPrivateMessageContent fuzzes the decoder of decrypted PrivateMessage
// plaintexts (content, auth, zero padding), for each content type.
func FuzzPrivateMessageContent(f *testing.F) {
	cases := fuzzMessages(f)
	for _, c := range cases[:20] {
		for _, field := range []string{"public_message_application", "public_message_proposal", "public_message_commit"} {
			m, err := ParseMLSMessage(c[field])
			if err != nil {
				f.Fatal(err)
			}
			pm := m.PublicMessage
			pt := pm.Content.appendBody(nil)
			pt = pm.Auth.append(pt, pm.Content.ContentType)
			f.Add(uint8(pm.Content.ContentType), append(pt, 0, 0, 0))
		}
	}
	f.Fuzz(func(t *testing.T, ct uint8, b []byte) {
		c, auth, err := parsePrivateMessageContent(ContentType(ct), b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		enc := c.appendBody(nil)
		enc = auth.append(enc, c.ContentType)
		if !bytes.HasPrefix(b, enc) {
			t.Fatalf("re-encoding is not a prefix of the input:\n got %x\n  in %x", enc, b)
		}
		for _, p := range b[len(enc):] {
			if p != 0 {
				t.Fatalf("accepted non-zero padding %x", b[len(enc):])
			}
		}
	})
}
