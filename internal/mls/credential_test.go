package mls

import (
	"bytes"
	"errors"
	"testing"
)

func TestCredentialRoundTrip(t *testing.T) {
	for _, c := range []Credential{
		NewBasicCredential([]byte("alice")),
		NewBasicCredential(nil),
		{Type: CredentialX509, Certificates: [][]byte{{1, 2, 3}, {}, bytes.Repeat([]byte{9}, 300)}},
		{Type: CredentialX509, Certificates: [][]byte{}},
	} {
		enc := c.Marshal()
		got, err := ParseCredential(enc)
		if err != nil {
			t.Fatalf("%v: %v", c.Type, err)
		}
		if !got.Equal(&c) || !bytes.Equal(got.Marshal(), enc) {
			t.Fatalf("%v: round trip differs", c.Type)
		}
	}
	// Basic credential "alice": type 1, then opaque<V>.
	if got, want := NewBasicCredential([]byte("alice")).Marshal(), []byte{0, 1, 5, 'a', 'l', 'i', 'c', 'e'}; !bytes.Equal(got, want) {
		t.Fatalf("basic encoding = %x, want %x", got, want)
	}
	for name, b := range map[string][]byte{
		"unknown type": {0, 9, 0},
		"truncated":    {0, 1, 5, 'a'},
		"trailing":     {0, 1, 0, 0},
		"empty":        {},
	} {
		if _, err := ParseCredential(b); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: %v, want ErrDecode", name, err)
		}
	}
}

func FuzzCredential(f *testing.F) {
	f.Add(NewBasicCredential([]byte("alice")).Marshal())
	x := Credential{Type: CredentialX509, Certificates: [][]byte{{1, 2}, {3}}}
	f.Add(x.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredential(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
