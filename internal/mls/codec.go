package mls

// This file is the TLS presentation language codec of RFC 9420 §2.1, with the
// variable-length vector headers of §2.1.2.
//
// Decoding uses a Reader with a sticky error: after the first failure every
// read returns a zero value and Err reports the failure, so a decoder can be
// written as a straight sequence of reads followed by one check. Encoding
// appends to a byte slice, in the style of the standard library's Append
// functions. Every type that goes on the wire has a parse/append pair built
// from these pieces; nothing uses reflection.
//
// The decoder is strict: non-minimal varints, lengths over the limit,
// truncated input and trailing bytes are all errors.

import (
	"errors"
	"fmt"
)

// ErrDecode is matched (errors.Is) by every decoding failure.
var ErrDecode = errors.New("mls: decode error")

// MaxVarint is the largest value a variable-length header can carry (2^30-1).
const MaxVarint = 1<<30 - 1

// AppendVarint appends the RFC 9420 §2.1.2 variable-length integer encoding of
// n, using the shortest form. It panics if n > MaxVarint, which is a
// programming error: callers bound their vectors well below 1 GiB.
func AppendVarint(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n>>8)|0x40, byte(n))
	case n <= MaxVarint:
		return append(b, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
	default:
		panic(fmt.Sprintf("mls: varint %d too large", n))
	}
}

// ParseVarint decodes one variable-length integer from the front of b and
// returns it with the number of bytes it used.
func ParseVarint(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("%w: truncated varint", ErrDecode)
	}
	prefix := b[0] >> 6
	if prefix == 3 {
		return 0, 0, fmt.Errorf("%w: invalid varint prefix 0b11", ErrDecode)
	}
	size := 1 << prefix
	if len(b) < size {
		return 0, 0, fmt.Errorf("%w: truncated varint", ErrDecode)
	}
	v := uint64(b[0] & 0x3f)
	for i := 1; i < size; i++ {
		v = v<<8 | uint64(b[i])
	}
	// RFC 9420 §2.1.2: the encoding must be minimal.
	if (size == 2 && v < 1<<6) || (size == 4 && v < 1<<14) {
		return 0, 0, fmt.Errorf("%w: non-minimal varint", ErrDecode)
	}
	return v, size, nil
}

// AppendUint8 appends one byte.
func AppendUint8(b []byte, v uint8) []byte { return append(b, v) }

// AppendUint16 appends v in network byte order.
func AppendUint16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

// AppendUint32 appends v in network byte order.
func AppendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendUint64 appends v in network byte order.
func AppendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendOpaque appends a variable-length vector of bytes (opaque x<V>).
func AppendOpaque(b []byte, v []byte) []byte {
	b = AppendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendBool appends a TLS-presentation boolean (one byte, 0 or 1).
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendVector appends a variable-length vector whose body is written by body.
// body appends to the slice it is given and returns it; the length header is
// filled in afterwards.
func AppendVector(b []byte, body func([]byte) []byte) []byte {
	start := len(b)
	// Reserve 4 bytes for the header (the longest form), write the body, then
	// move the body back if a shorter header suffices.
	b = append(b, 0, 0, 0, 0)
	b = body(b)
	n := len(b) - start - 4
	var hdr [4]byte
	h := AppendVarint(hdr[:0], uint64(n))
	if len(h) != 4 {
		copy(b[start+len(h):], b[start+4:])
		b = b[:len(b)-(4-len(h))]
	}
	copy(b[start:], h)
	return b
}

// AppendOptional appends optional<T>: a presence byte, then the value if
// present. present reports whether the value exists; body appends it.
func AppendOptional(b []byte, present bool, body func([]byte) []byte) []byte {
	if !present {
		return append(b, 0)
	}
	return body(append(b, 1))
}

// Reader decodes TLS-presentation values from a byte slice. The zero Reader is
// empty. Errors are sticky: see the file comment.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b. The Reader does not copy b; Opaque and
// Fixed return copies, so decoded values never alias the input.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error the Reader met, or nil.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Empty reports whether every byte was read and no error occurred.
func (r *Reader) Empty() bool { return r.err == nil && len(r.b) == 0 }

// Fail records err (wrapped with ErrDecode if it is not already) unless an
// earlier error is recorded. Decoders call it for semantic checks, such as an
// unknown enum value.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrDecode, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

// Finish returns the Reader's error, or an error if unread bytes remain.
// Decoders of whole messages end with it.
func (r *Reader) Finish() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(r.b))
	}
	return nil
}

func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.Fail("truncated %s: need %d bytes, have %d", what, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Uint8 reads one byte.
func (r *Reader) Uint8() uint8 {
	v := r.take(1, "uint8")
	if v == nil {
		return 0
	}
	return v[0]
}

// Uint16 reads a big-endian uint16.
func (r *Reader) Uint16() uint16 {
	v := r.take(2, "uint16")
	if v == nil {
		return 0
	}
	return uint16(v[0])<<8 | uint16(v[1])
}

// Uint32 reads a big-endian uint32.
func (r *Reader) Uint32() uint32 {
	v := r.take(4, "uint32")
	if v == nil {
		return 0
	}
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
}

// Uint64 reads a big-endian uint64.
func (r *Reader) Uint64() uint64 {
	v := r.take(8, "uint64")
	if v == nil {
		return 0
	}
	var n uint64
	for _, c := range v {
		n = n<<8 | uint64(c)
	}
	return n
}

// Bool reads a boolean byte; values other than 0 and 1 are an error.
func (r *Reader) Bool() bool {
	v := r.Uint8()
	if v > 1 {
		r.Fail("invalid boolean %d", v)
		return false
	}
	return v == 1
}

// Varint reads a variable-length integer (RFC 9420 §2.1.2).
func (r *Reader) Varint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := ParseVarint(r.b)
	if err != nil {
		r.err = err
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Fixed reads exactly n bytes and returns a copy.
func (r *Reader) Fixed(n int) []byte {
	v := r.take(n, "fixed-size field")
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// Opaque reads a variable-length byte vector (opaque x<V>) and returns a
// copy. An empty vector decodes as a non-nil empty slice.
func (r *Reader) Opaque() []byte {
	n := r.Varint()
	v := r.take(int(n), "vector")
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

// Vector reads a variable-length vector and calls elem until its body is
// used up. elem reads one element from the sub-reader it is given. Any error,
// or an element that reads nothing, fails the Reader.
func (r *Reader) Vector(elem func(*Reader)) {
	n := r.Varint()
	body := r.take(int(n), "vector")
	if r.err != nil {
		return
	}
	sub := &Reader{b: body}
	for sub.err == nil && len(sub.b) > 0 {
		before := len(sub.b)
		elem(sub)
		if sub.err == nil && len(sub.b) == before {
			sub.Fail("vector element consumed no bytes")
		}
	}
	if sub.err != nil {
		r.err = sub.err
		r.b = nil
	}
}

// Optional reads optional<T>: a presence byte, then, if present, the value
// via body. It reports whether the value was present.
func (r *Reader) Optional(body func(*Reader)) bool {
	switch p := r.Uint8(); {
	case r.err != nil:
		return false
	case p == 0:
		return false
	case p == 1:
		body(r)
		return r.err == nil
	default:
		r.Fail("invalid optional presence byte %d", p)
		return false
	}
}

// Rest returns a copy of every unread byte and consumes them.
func (r *Reader) Rest() []byte {
	return r.Fixed(len(r.b))
}

// Sub reads a variable-length vector and returns a Reader over its body, for
// structures that are length-prefixed as a whole.
func (r *Reader) Sub() *Reader {
	n := r.Varint()
	body := r.take(int(n), "vector")
	if r.err != nil {
		return &Reader{err: r.err}
	}
	return &Reader{b: body}
}

// Merge moves a sub-reader's error (and an unread remainder, as an error)
// back into r. Use it after decoding a Sub.
func (r *Reader) Merge(sub *Reader) {
	if r.err != nil {
		return
	}
	if err := sub.Finish(); err != nil {
		r.err = err
		r.b = nil
	}
}
