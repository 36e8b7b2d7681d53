package content

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	idA = MessageID(bytes.Repeat([]byte{0xaa}, 16))
	idB = MessageID(bytes.Repeat([]byte{0xbb}, 32))
	at  = time.Unix(1700000000, 123456789)
)

func sampleAttachment() Attachment {
	return Attachment{ContentType: "image/png", Location: "blob:0123abcd", Expires: 1800000000, Size: 200 << 20,
		EncAlg: 29, Key: bytes.Repeat([]byte{1}, 32), Nonce: bytes.Repeat([]byte{2}, 12), AAD: []byte{},
		HashAlg: HashSHA256, Hash: bytes.Repeat([]byte{3}, 32), Description: "a cat", Name: "cat.png"}
}

// samples are one message of every part, as the daemon and later
// clients write them.
func samples() map[string]*Message {
	withTime := func(m *Message) *Message { m.SentAt = at; return m }
	expiring := NewText("gone soon")
	expiring.Expires = &Expiry{Relative: true, Seconds: 3600}
	absolute := NewText("gone at")
	absolute.Expires = &Expiry{Seconds: 1800000000}
	unknown := NewText("with extras")
	unknown.Extensions = []Extension{{Number: -7, Value: []byte{0x01}}, {Number: 1, Value: []byte{0x63, 'a', 'b', 'c'}}, {Name: "x-future", Value: []byte{0x82, 0x01, 0x02}}}
	unknownPart := New(Part{Disposition: 200, Language: "en", Cardinality: CardinalitySingle, ContentType: "text/markdown", Content: []byte("*hi*")})
	topic := NewText("on topic")
	topic.Topic = []byte("t1")
	return map[string]*Message{
		"text":          withTime(NewText("hello, grüße ✓")),
		"empty text":    NewText(""),
		"reply":         withTime(NewReply(idA, "yes")),
		"reaction":      NewReaction(idB, "👍"),
		"edit":          NewEdit(idA, "fixed"),
		"delete":        NewDelete(idB),
		"receipt":       NewReceipt(Receipt{At: time.UnixMilli(1700000000123), Statuses: []MessageStatus{{idA, StatusDelivered}, {idB, StatusRead}, {idA, 9}}}),
		"attachment":    NewAttachment(sampleAttachment(), ""),
		"captioned":     NewAttachment(sampleAttachment(), "look"),
		"relative exp":  expiring,
		"absolute exp":  absolute,
		"unknown ext":   unknown,
		"unknown part":  unknownPart,
		"topic":         topic,
		"timer":         NewTimer(3600),
		"timer off":     NewTimer(0),
		"no sent time":  NewText("when?"),
		"nested multi":  New(Part{Cardinality: CardinalityMulti, Semantics: SemanticsChooseOne, Parts: []Part{TextPart(DispositionRender, "a"), {Cardinality: CardinalityMulti, Semantics: SemanticsSingleUnit, Parts: []Part{TextPart(DispositionInline, "b"), {Cardinality: CardinalityNull}}}}}),
		"unknown multi": New(Part{Cardinality: CardinalityMulti, Semantics: 7, Parts: []Part{TextPart(DispositionRender, "a"), TextPart(DispositionRender, "b")}}),
	}
}

func mustAppend(t testing.TB, m *Message) []byte {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for name, m := range samples() {
		t.Run(name, func(t *testing.T) {
			b := mustAppend(t, m)
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			again := mustAppend(t, got)
			if !bytes.Equal(b, again) {
				t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
			}
			got2, err := Parse(again)
			if err != nil || !reflect.DeepEqual(got, got2) {
				t.Fatalf("second parse: %v\n%+v\n%+v", err, got, got2)
			}
			if !got.SentAt.Equal(m.SentAt) || !bytes.Equal(got.Replaces, m.Replaces) || !bytes.Equal(got.InReplyTo, m.InReplyTo) ||
				!reflect.DeepEqual(got.Expires, m.Expires) || got.Text() != m.Text() || !reflect.DeepEqual(got.Attachments(), m.Attachments()) {
				t.Fatalf("parsed %+v, sent %+v", got, m)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	s := samples()
	for name, want := range map[string]Kind{
		"text": KindText, "empty text": KindText, "reply": KindText, "reaction": KindReaction, "edit": KindEdit,
		"delete": KindDelete, "receipt": KindReceipt, "attachment": KindAttachment, "captioned": KindAttachment,
		"unknown part": KindUnknown, "timer": KindTimer, "timer off": KindTimer,
	} {
		got, err := Parse(mustAppend(t, s[name]))
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind() != want {
			t.Errorf("%s: kind %v, want %v", name, got.Kind(), want)
		}
	}
	if got, _ := Parse(mustAppend(t, s["timer"])); got == nil || got.Timer == nil || *got.Timer != 3600 || got.Summary() != "[disappearing messages after 3600s]" {
		t.Errorf("timer: %+v", got)
	}
	over := NewTimer(MaxTimer + 1)
	if _, err := over.Append(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("timer over the limit: %v", err)
	}
	got, _ := Parse(mustAppend(t, s["receipt"]))
	r := got.Body.Receipt
	if r == nil || !r.At.Equal(time.UnixMilli(1700000000123)) || len(r.Statuses) != 3 || r.Statuses[1].Status != StatusRead || r.Statuses[2].Status.String() != "status(9)" {
		t.Errorf("receipt: %+v", r)
	}
	got, _ = Parse(mustAppend(t, s["captioned"]))
	if got.Text() != "look" || len(got.Attachments()) != 1 || got.Attachments()[0].Name != "cat.png" {
		t.Errorf("captioned: %q %+v", got.Text(), got.Attachments())
	}
}

func TestUnknownPreserved(t *testing.T) {
	s := samples()
	for name, want := range map[string][]string{
		"unknown ext":   {"extension -7", `extension "x-future"`},
		"unknown part":  {"part of disposition 200"},
		"unknown multi": {"multipart of semantics 7"},
		"text":          nil,
		"captioned":     nil,
		"receipt":       nil,
	} {
		got, err := Parse(mustAppend(t, s[name]))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Unknown(), want) {
			t.Errorf("%s: unknown %q, want %q", name, got.Unknown(), want)
		}
	}
	got, _ := Parse(mustAppend(t, s["unknown part"]))
	if p := got.Body; p.ContentType != "text/markdown" || string(p.Content) != "*hi*" || p.Language != "en" {
		t.Errorf("unknown part not kept: %+v", p)
	}
	m := New(Part{Cardinality: CardinalitySingle, ContentType: "text/markdown", Content: []byte("x")})
	got, _ = Parse(mustAppend(t, m))
	if u := got.Unknown(); len(u) != 1 || !strings.Contains(u[0], "text/markdown") {
		t.Errorf("unknown type: %q", u)
	}
}

// The media types a text part may have: the one this package writes (taken
// without a parse) and any spelling of text/plain in UTF-8; no other.
func TestTextTypes(t *testing.T) {
	for ct, want := range map[string]bool{
		MediaTypeText:                true,
		"text/plain":                 true,
		"Text/Plain; charset=UTF-8":  true,
		"text/plain;charset=latin1":  false,
		"text/plainx":                false,
		"text/plain;charset=utf-8;;": false,
		MediaTypeStatus:              false,
		"":                           false,
	} {
		if got := isTextType(ct); got != want {
			t.Errorf("isTextType(%q) = %v, want %v", ct, got, want)
		}
	}
	if !isStatusType(MediaTypeStatus) || !isStatusType("application/MIMI-message-status") || isStatusType(MediaTypeText) {
		t.Error("isStatusType")
	}
}
