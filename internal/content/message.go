package content

import (
	"crypto/rand"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Version is the version of the format this package writes and reads.
const Version = 1

// SaltSize is the size of MIMI's salt, random per message.
const SaltSize = 16

// maxTopicSize bounds MIMI's topicId.
const maxTopicSize = 255

// MessageID names another message (in replaces, inReplyTo and receipts).
type MessageID []byte

// Sizes of a MessageID.
const (
	MinMessageIDSize = 16
	MaxMessageIDSize = 32
)

// Message is one decoded message.
type Message struct {
	// Salt is 16 random bytes (New fills it).
	Salt []byte
	// SentAt is the sender's clock; zero if not given.
	SentAt time.Time
	// Replaces names the message this one edits or deletes.
	Replaces MessageID
	// Topic is MIMI's topicId, kept as it came.
	Topic []byte
	// Expires is nil for a message that does not expire.
	Expires *Expiry
	// InReplyTo names the message this one replies or reacts to.
	InReplyTo MessageID
	// Timer, when set, is a control message: from now on the group's
	// messages disappear this many seconds after they are sent (0: they
	// no longer do). It is carried in the extension "qpq-disappear-after".
	Timer *uint32
	// Extensions are the extensions this package does not interpret,
	// ordered by key; our own (version, sent-at, timer) are not among
	// them.
	Extensions []Extension
	// Body is MIMI's nestedPart.
	Body Part
}

// Expiry is MIMI's Expiration: Seconds after sending if Relative, else
// the Unix time in seconds when the message expires.
type Expiry struct {
	Relative bool
	Seconds  uint32
}

// New is a message with a fresh salt and the given body.
func New(body Part) *Message {
	m := &Message{Salt: make([]byte, SaltSize), Body: body}
	rand.Read(m.Salt)
	return m
}

// Parse decodes one message, strictly (see the package guide).
func Parse(b []byte) (*Message, error) {
	if len(b) > MaxSize {
		return nil, fieldErr("message", ErrTooLarge, "%d bytes, limit %d", len(b), MaxSize)
	}
	if len(b) == 0 {
		return nil, fieldErr("message", ErrSyntax, "empty")
	}
	if b[0]>>5 != 4 { // not an array: another format or version
		return nil, fieldErr("message", ErrVersion, "not a MIMI content array")
	}
	a, err := array("message", b, 7)
	if err != nil {
		return nil, err
	}
	m := &Message{}
	if m.Salt, err = bytesField("salt", a[0], SaltSize); err != nil {
		return nil, err
	}
	if len(m.Salt) != SaltSize {
		return nil, fieldErr("salt", ErrInvalid, "%d bytes, want %d", len(m.Salt), SaltSize)
	}
	if m.Replaces, err = parseOptionalID("replaces", a[1]); err != nil {
		return nil, err
	}
	if m.Topic, err = bytesField("topicId", a[2], maxTopicSize); err != nil {
		return nil, err
	}
	if !isNull(a[3]) {
		e, err := array("expires", a[3], 2)
		if err != nil {
			return nil, err
		}
		m.Expires = &Expiry{}
		if m.Expires.Relative, err = boolField("expires", e[0]); err != nil {
			return nil, err
		}
		s, err := uintField("expires", e[1], math.MaxUint32)
		if err != nil {
			return nil, err
		}
		m.Expires.Seconds = uint32(s)
	}
	if m.InReplyTo, err = parseOptionalID("inReplyTo", a[4]); err != nil {
		return nil, err
	}
	if err := m.parseExtensions(a[5]); err != nil {
		return nil, err
	}
	if err := m.Body.parse("body", a[6], 0, new(int)); err != nil {
		return nil, err
	}
	return m, nil
}

// Append appends the encoding of m to b. It fails (with an *Error) on a
// message Parse would refuse.
func (m *Message) Append(b []byte) ([]byte, error) {
	var expires any
	if m.Expires != nil {
		expires = []any{m.Expires.Relative, m.Expires.Seconds}
	}
	ext, err := m.appendExtensions()
	if err != nil {
		return nil, err
	}
	body, err := m.Body.marshal("body")
	if err != nil {
		return nil, err
	}
	topic := m.Topic
	if topic == nil {
		topic = []byte{}
	}
	enc, err := encMode.Marshal([]any{nonNil(m.Salt), optionalID(m.Replaces), topic, expires, optionalID(m.InReplyTo), ext, body})
	if err != nil {
		return nil, fieldErr("message", ErrInvalid, "%v", err)
	}
	if _, err := Parse(enc); err != nil {
		return nil, err // what is written is what is read
	}
	return append(b, enc...), nil
}

// Marshal is Append(nil).
func (m *Message) Marshal() ([]byte, error) { return m.Append(nil) }

func parseOptionalID(field string, raw cbor.RawMessage) (MessageID, error) {
	if isNull(raw) {
		return nil, nil
	}
	id, err := bytesField(field, raw, MaxMessageIDSize)
	if err != nil {
		return nil, err
	}
	return id, checkID(field, id)
}

func checkID(field string, id MessageID) error {
	if len(id) < MinMessageIDSize || len(id) > MaxMessageIDSize {
		return fieldErr(field, ErrInvalid, "message id of %d bytes, want %d to %d", len(id), MinMessageIDSize, MaxMessageIDSize)
	}
	return nil
}

// optionalID is id as a CBOR value: a byte string, or null if absent.
func optionalID(id MessageID) any {
	if id == nil {
		return nil
	}
	return []byte(id)
}
