package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

// testKeyPackagePrefix builds the start of a KeyPackage up to and including a
// BasicCredential with identity, followed by tail (the rest of the LeafNode
// and package, which the node does not read).
func testKeyPackagePrefix(identity, tail []byte) []byte {
	b := []byte{0, 1, 0, 1}                          // mls10, suite 1
	b = appendOpaque(b, bytes.Repeat([]byte{1}, 32)) // init_key
	b = appendOpaque(b, bytes.Repeat([]byte{2}, 32)) // encryption_key
	b = appendOpaque(b, identity)                    // signature_key
	b = append(b, 0, 1)                              // basic
	b = appendOpaque(b, identity)
	return append(b, tail...)
}

func TestKeyPackageIdentity(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	kp := testKeyPackagePrefix(pub, bytes.Repeat([]byte{9}, 100))
	id, err := keyPackageIdentity(kp)
	if err != nil {
		t.Fatalf("keyPackageIdentity: %v", err)
	}
	if !bytes.Equal(id, pub) {
		t.Fatalf("identity = %x, want %x", id, pub)
	}

	// A long identity exercises the 2-byte length.
	long := bytes.Repeat([]byte{7}, 300)
	if id, err := keyPackageIdentity(testKeyPackagePrefix(long, nil)); err != nil || !bytes.Equal(id, long) {
		t.Fatalf("300-byte identity: %x, %v", id, err)
	}

	bad := map[string][]byte{
		"empty":             nil,
		"version 2":         append([]byte{0, 2}, kp[2:]...),
		"suite 0":           append([]byte{0, 1, 0, 0}, kp[4:]...),
		"truncated":         kp[:40],
		"x509 credential":   func() []byte { b := bytes.Clone(kp); b[4+33+33+33+1] = 2; return b }(),
		"reserved varint":   append([]byte{0, 1, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 0}, kp[4:]...),
		"non-minimal 2":     append([]byte{0, 1, 0, 1, 0x40, 0x20}, kp[5:]...),
		"non-minimal 4":     append([]byte{0, 1, 0, 1, 0x80, 0, 0, 0x20}, kp[5:]...),
		"length past end":   []byte{0, 1, 0, 1, 0x80, 0xff, 0xff, 0xff, 1, 2},
		"no identity bytes": testKeyPackagePrefix(pub, nil)[:4+33+33+33+2],
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := keyPackageIdentity(b); !errors.Is(err, errKeyPackage) {
				t.Fatalf("err = %v, want errKeyPackage", err)
			}
		})
	}
}

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint32{0, 1, 63, 64, 16383, 16384, 1<<30 - 1} {
		b := appendVarint(nil, v)
		r := &kpReader{b: b}
		got, err := r.varint("v")
		if err != nil || got != v || r.off != len(b) {
			t.Fatalf("varint %d: got %d, off %d/%d, %v", v, got, r.off, len(b), err)
		}
	}
}

func FuzzKeyPackageIdentity(f *testing.F) {
	f.Add(testKeyPackagePrefix(bytes.Repeat([]byte{5}, 32), []byte{1, 2, 3}))
	f.Add(testKeyPackagePrefix(bytes.Repeat([]byte{5}, 300), nil))
	f.Add([]byte{0, 1, 0, 1, 0x40, 0x20})
	f.Add([]byte{0, 1, 0, 1, 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := keyPackageIdentity(b)
		if err != nil {
			if !errors.Is(err, errKeyPackage) {
				t.Fatalf("error not errKeyPackage: %v", err)
			}
			return
		}
		// The identity is a slice of the input, and re-encoding the prefix
		// with it finds it again (minimal encodings only).
		if len(id) > len(b) {
			t.Fatalf("identity longer than input")
		}
		again, err := keyPackageIdentity(testKeyPackagePrefix(id, nil))
		if err != nil || !bytes.Equal(again, id) {
			t.Fatalf("round trip: %x vs %x, %v", again, id, err)
		}
	})
}
