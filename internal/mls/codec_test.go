package mls

import (
	"bytes"
	"errors"
	"testing"
)

func TestVarintRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, 63, 64, 16383, 16384, 1 << 20, MaxVarint} {
		b := AppendVarint(nil, n)
		got, used, err := ParseVarint(b)
		if err != nil || got != n || used != len(b) {
			t.Errorf("varint %d: got %d (%d bytes) err %v, encoding %x", n, got, used, err, b)
		}
	}
}

func TestVarintRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"prefix 11", []byte{0xc0, 0, 0, 0, 0, 0, 0, 1}},
		{"truncated 2", []byte{0x40}},
		{"truncated 4", []byte{0x80, 0, 1}},
		{"non-minimal 2", []byte{0x40, 0x3f}},
		{"non-minimal 4", []byte{0x80, 0, 0x3f, 0xff}},
	} {
		if _, _, err := ParseVarint(tc.in); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: err = %v, want ErrDecode", tc.name, err)
		}
	}
}

func TestVectorHeaderSizes(t *testing.T) {
	for _, n := range []int{0, 63, 64, 16383, 16384} {
		body := bytes.Repeat([]byte{7}, n)
		b := AppendVector(nil, func(b []byte) []byte { return append(b, body...) })
		if !bytes.Equal(b, AppendOpaque(nil, body)) {
			t.Fatalf("AppendVector(%d) differs from AppendOpaque", n)
		}
		r := NewReader(b)
		if got := r.Opaque(); !bytes.Equal(got, body) || r.Finish() != nil {
			t.Fatalf("Opaque(%d) round trip failed: %v", n, r.Finish())
		}
	}
}

func TestReaderStrict(t *testing.T) {
	b := AppendOpaque(nil, []byte("abc"))
	r := NewReader(append(b, 0))
	r.Opaque()
	if err := r.Finish(); !errors.Is(err, ErrDecode) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
	r = NewReader(b[:3])
	r.Opaque()
	if err := r.Finish(); !errors.Is(err, ErrDecode) {
		t.Fatalf("truncated vector accepted: %v", err)
	}
	r = NewReader([]byte{2})
	if r.Bool(); r.Err() == nil {
		t.Fatal("boolean 2 accepted")
	}
	r = NewReader([]byte{3, 1, 2, 3})
	var got []uint16
	r.Vector(func(r *Reader) { got = append(got, r.Uint16()) })
	if r.Err() == nil {
		t.Fatalf("vector with a half element accepted: %v", got)
	}
	r = NewReader([]byte{2, 0})
	if r.Optional(func(r *Reader) {}); r.Err() == nil {
		t.Fatal("optional presence byte 2 accepted")
	}
}

func TestReaderNoAlias(t *testing.T) {
	in := AppendOpaque(nil, []byte{1, 2, 3})
	r := NewReader(in)
	out := r.Opaque()
	in[1] = 9
	if out[0] != 1 {
		t.Fatal("Opaque aliases its input")
	}
}

func FuzzVarint(f *testing.F) {
	for _, s := range [][]byte{{0}, {0x40, 0x40}, {0x80, 0, 0x40, 0}, {0xc0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := ParseVarint(b)
		if err != nil {
			return
		}
		if enc := AppendVarint(nil, v); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("varint %x decoded to %d re-encodes as %x", b[:n], v, enc)
		}
	})
}
