package content

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func raw(t testing.TB, v any) cbor.RawMessage {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// build is a message from raw top-level items, each replaced by the one
// given in over (by index).
func build(t testing.TB, over map[int]any) []byte {
	t.Helper()
	items := []any{bytes.Repeat([]byte{7}, 16), nil, []byte{}, nil, nil,
		map[string]any{extVersion: 1}, []any{1, "", 1, MediaTypeText, []byte("hi")}}
	for i, v := range over {
		items[i] = v
	}
	return raw(t, items)
}

func version() map[string]any { return map[string]any{extVersion: 1} }

func TestHostile(t *testing.T) {
	good := build(t, nil)
	if _, err := Parse(good); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	deepArray := append(bytes.Repeat([]byte{0x81}, 100), 0)
	dupKeys := cbor.RawMessage(append([]byte{0xa2}, append(append(raw(t, extVersion), 1), append(raw(t, extVersion), 1)...)...))
	nest := func(p any, n int) any {
		for range n {
			p = []any{0, "", 3, 0, []any{p, []any{0, "", 0}}}
		}
		return p
	}
	leaf := []any{1, "", 1, MediaTypeText, []byte("x")}
	manyExt := map[int]int{}
	for i := range maxMapPairs + 1 {
		manyExt[i+10] = 0
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrSyntax},
		{"oversized", append(append([]byte{0x87}, good[1:]...), make([]byte, MaxSize)...), ErrTooLarge},
		{"trailing bytes", append(bytes.Clone(good), 0), ErrSyntax},
		{"deep nesting", deepArray, ErrTooLarge},
		{"deep multiparts", build(t, map[int]any{6: nest(leaf, maxPartDepth+1)}), ErrTooLarge},
		{"huge array claim", []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrSyntax},
		{"long array", raw(t, make([]int, maxArrayElements+1)), ErrTooLarge},
		{"many extensions", build(t, map[int]any{5: manyExt}), ErrTooLarge},
		{"indefinite length", append([]byte{0x9f}, append(good[1:], 0xff)...), ErrSyntax},
		{"tag", append([]byte{0xd8, 0x20}, good...), ErrVersion},
		{"tag inside", build(t, map[int]any{2: cbor.RawMessage{0xc2, 0x40}}), ErrSyntax},
		{"six items", raw(t, []any{1, 2, 3, 4, 5, 6}), ErrInvalid},
		{"duplicate extension", build(t, map[int]any{5: dupKeys}), ErrDuplicateKey},
		{"not an array", raw(t, map[string]int{"a": 1}), ErrVersion},
		{"old format", append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, "hi"...), ErrVersion},
		{"no version", build(t, map[int]any{5: map[string]any{}}), ErrVersion},
		{"version 2", build(t, map[int]any{5: map[string]any{extVersion: 2}}), ErrVersion},
		{"version as text", build(t, map[int]any{5: map[string]any{extVersion: "1"}}), ErrInvalid},
		{"salt as text", build(t, map[int]any{0: strings.Repeat("s", 16)}), ErrInvalid},
		{"short salt", build(t, map[int]any{0: []byte{1}}), ErrInvalid},
		{"salt null", build(t, map[int]any{0: nil}), ErrInvalid},
		{"replaces as int", build(t, map[int]any{1: 5}), ErrInvalid},
		{"short replaces", build(t, map[int]any{1: []byte{1, 2}}), ErrInvalid},
		{"long inReplyTo", build(t, map[int]any{4: make([]byte, 33)}), ErrTooLarge},
		{"topic null", build(t, map[int]any{2: nil}), ErrInvalid},
		{"expires ints", build(t, map[int]any{3: []any{1, 2}}), ErrInvalid},
		{"expires overflows", build(t, map[int]any{3: []any{true, uint64(1) << 32}}), ErrInvalid},
		{"expires negative", build(t, map[int]any{3: []any{true, -1}}), ErrInvalid},
		{"extensions as array", build(t, map[int]any{5: []any{}}), ErrInvalid},
		{"extension key array", build(t, map[int]any{5: cbor.RawMessage(append(append([]byte{0xa2}, append(raw(t, extVersion), 1)...), 0x80, 0))}), ErrInvalid},
		{"extension value large", build(t, map[int]any{5: map[string]any{extVersion: 1, "big": make([]byte, maxExtValueSize)}}), ErrTooLarge},
		{"sent-at negative", build(t, map[int]any{5: map[string]any{extVersion: 1, extSentAt: -1}}), ErrInvalid},
		{"sent-at huge", build(t, map[int]any{5: map[string]any{extVersion: 1, extSentAt: uint64(1) << 63}}), ErrInvalid},
		{"disposition as text", build(t, map[int]any{6: []any{"render", "", 1, MediaTypeText, []byte("x")}}), ErrInvalid},
		{"disposition 256", build(t, map[int]any{6: []any{256, "", 1, MediaTypeText, []byte("x")}}), ErrInvalid},
		{"unknown cardinality", build(t, map[int]any{6: []any{1, "", 4}}), ErrInvalid},
		{"single missing content", build(t, map[int]any{6: []any{1, "", 1, MediaTypeText}}), ErrInvalid},
		{"content as text", build(t, map[int]any{6: []any{1, "", 1, MediaTypeText, "hi"}}), ErrInvalid},
		{"text not UTF-8", build(t, map[int]any{6: []any{1, "", 1, MediaTypeText, []byte{0xff, 0xfe}}}), ErrInvalid},
		{"language not UTF-8", build(t, map[int]any{6: cbor.RawMessage{0x83, 0x01, 0x61, 0xff, 0x00}}), ErrSyntax},
		{"multi of one", build(t, map[int]any{6: []any{1, "", 3, 2, []any{leaf}}}), ErrInvalid},
		{"too many parts", build(t, map[int]any{6: []any{1, "", 3, 2, func() []any {
			p := make([]any, maxParts+1)
			for i := range p {
				p[i] = leaf
			}
			return p
		}()}}), ErrTooLarge},
		{"external short", build(t, map[int]any{6: []any{6, "", 2, "image/png"}}), ErrInvalid},
		{"external key large", build(t, map[int]any{6: append([]any{6, "", 2}, func() []any { a := sampleAttachment(); a.Key = make([]byte, maxKeySize+1); return a.marshal() }()...)}), ErrTooLarge},
		{"receipt malformed", build(t, map[int]any{6: []any{7, "", 1, MediaTypeStatus, []byte{0x82, 0x00}}}), ErrSyntax},
		{"receipt wrong shape", build(t, map[int]any{6: []any{7, "", 1, MediaTypeStatus, raw(t, []any{0, []any{[]any{[]byte{1}, 1}}})}}), ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse = %+v, %v; want %v", m, err, c.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%v is not an *Error", err)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	for name, m := range samples() {
		b := mustAppend(t, m)
		for n := range len(b) {
			if _, err := Parse(b[:n]); !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrVersion) {
				t.Fatalf("%s cut at %d of %d: %v", name, n, len(b), err)
			}
		}
	}
}

func TestAppendRefuses(t *testing.T) {
	big := NewText(strings.Repeat("x", MaxSize))
	if _, err := big.Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized text: %v", err)
	}
	bad := NewText("\xff")
	if _, err := bad.Append(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	short := NewReply(MessageID{1}, "x")
	if _, err := short.Append(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("short id: %v", err)
	}
	dup := NewText("x")
	dup.Extensions = []Extension{{Name: extVersion, Value: []byte{1}}}
	if _, err := dup.Append(nil); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("extension shadowing the version: %v", err)
	}
	noSalt := NewText("x")
	noSalt.Salt = nil
	if _, err := noSalt.Append(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("no salt: %v", err)
	}
	ext := New(Part{Cardinality: CardinalityExternal})
	if _, err := ext.Append(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("external without attachment: %v", err)
	}
}
