package content

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Our extensions (see the package guide); MIMI's names are an int or a
// text string, so text names cannot collide with registered numbers.
const (
	extVersion = "qpq-version"
	extSentAt  = "qpq-sent-at"
	extTimer   = "qpq-disappear-after"
)

// MaxTimer bounds a disappearing-messages timer (one year).
const MaxTimer = 365 * 24 * 3600

// Bounds of one extension, as MIMI sets them.
const (
	maxExtNameSize  = 255
	maxExtValueSize = 4096
)

// maxSentAt is the latest sent-at time accepted (Unix nanoseconds), far
// beyond any clock, below the int64 range.
const maxSentAt = 1 << 62

// Extension is one MIMI extension this package does not interpret: its
// name (a text string, or Number if Name is empty) and its value, raw
// CBOR written back as it came.
type Extension struct {
	Name   string
	Number int64
	Value  []byte
}

func (e Extension) key() any {
	if e.Name != "" {
		return e.Name
	}
	return e.Number
}

func compareExtensions(a, b Extension) int {
	if (a.Name == "") != (b.Name == "") {
		if a.Name == "" {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(a.Number, b.Number), cmp.Compare(a.Name, b.Name))
}

func (m *Message) parseExtensions(raw cbor.RawMessage) error {
	if err := major("extensions", raw, majorMap); err != nil {
		return err
	}
	var ext map[any]cbor.RawMessage
	if err := decode("extensions", raw, &ext); err != nil {
		return err
	}
	version := false
	for k, v := range ext {
		var e Extension
		switch k := k.(type) {
		case string:
			if len(k) == 0 || len(k) > maxExtNameSize {
				return fieldErr("extensions", ErrInvalid, "name of %d bytes", len(k))
			}
			e.Name = k
		case uint64:
			if k > math.MaxInt64 {
				return fieldErr("extensions", ErrInvalid, "name %d out of range", k)
			}
			e.Number = int64(k)
		case int64:
			e.Number = k
		default:
			return fieldErr("extensions", ErrInvalid, "name of type %T", k)
		}
		if len(v) > maxExtValueSize {
			return fieldErr("extension "+e.Name, ErrTooLarge, "value of %d bytes, limit %d", len(v), maxExtValueSize)
		}
		switch e.Name {
		case extVersion:
			n, err := uintField(extVersion, v, math.MaxUint64)
			if err != nil {
				return err
			}
			if n != Version {
				return fieldErr(extVersion, ErrVersion, "version %d, want %d", n, Version)
			}
			version = true
		case extSentAt:
			ns, err := uintField(extSentAt, v, maxSentAt)
			if err != nil {
				return err
			}
			m.SentAt = time.Unix(0, int64(ns))
		case extTimer:
			n, err := uintField(extTimer, v, MaxTimer)
			if err != nil {
				return err
			}
			t := uint32(n)
			m.Timer = &t
		default:
			e.Value = v
			m.Extensions = append(m.Extensions, e)
		}
	}
	if !version {
		return fieldErr(extVersion, ErrVersion, "missing")
	}
	slices.SortFunc(m.Extensions, compareExtensions)
	return nil
}

func (m *Message) appendExtensions() (map[any]cbor.RawMessage, error) {
	ext := map[any]cbor.RawMessage{extVersion: mustMarshal(uint64(Version))}
	if !m.SentAt.IsZero() {
		ns := m.SentAt.UnixNano()
		if ns < 0 || ns > maxSentAt {
			return nil, fieldErr(extSentAt, ErrInvalid, "time %v out of range", m.SentAt)
		}
		ext[extSentAt] = mustMarshal(uint64(ns))
	}
	if m.Timer != nil {
		if *m.Timer > MaxTimer {
			return nil, fieldErr(extTimer, ErrInvalid, "%d seconds, limit %d", *m.Timer, MaxTimer)
		}
		ext[extTimer] = mustMarshal(uint64(*m.Timer))
	}
	for _, e := range m.Extensions {
		k := e.key()
		if _, dup := ext[k]; dup {
			return nil, fieldErr("extensions", ErrDuplicateKey, "%v", k)
		}
		ext[k] = e.Value
	}
	return ext, nil
}

func mustMarshal(v any) cbor.RawMessage {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
