package attach

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func seal(t testing.TB, plain []byte) (*Sealed, []byte) {
	t.Helper()
	var ct bytes.Buffer
	s, err := Encrypt(&ct, bytes.NewReader(plain), uint64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	if uint64(ct.Len()) != s.CipherSize {
		t.Fatalf("ciphertext has %d bytes, CipherSize says %d", ct.Len(), s.CipherSize)
	}
	return s, ct.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		plain := make([]byte, n)
		rand.Read(plain)
		s, ct := seal(t, plain)
		var out bytes.Buffer
		if err := Decrypt(&out, bytes.NewReader(ct), s); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("%d bytes: plaintext differs", n)
		}
	}
}

func TestFreshKeys(t *testing.T) {
	a, ca := seal(t, []byte("same"))
	b, cb := seal(t, []byte("same"))
	if bytes.Equal(a.Key, b.Key) || bytes.Equal(ca, cb) {
		t.Fatal("two encryptions share a key or a ciphertext")
	}
}

// TestTampering plays a hostile store: every change to the ciphertext,
// and every claim about it that does not match, is refused.
func TestTampering(t *testing.T) {
	plain := make([]byte, 3*ChunkSize)
	rand.Read(plain)
	s, ct := seal(t, plain)
	cs := ChunkSize + TagSize
	other, otherCT := seal(t, plain)
	cases := []struct {
		name string
		ct   []byte
		s    Sealed
		want error
	}{
		{"flipped bit", func() []byte { c := bytes.Clone(ct); c[cs+5] ^= 1; return c }(), *s, ErrCorrupt},
		{"chunks swapped", append(append(append([]byte{}, ct[cs:2*cs]...), ct[:cs]...), ct[2*cs:]...), *s, ErrCorrupt},
		{"cut at a chunk", ct[:2*cs], *s, ErrTruncated},
		{"cut and size lowered", ct[:2*cs], Sealed{Key: s.Key, Prefix: s.Prefix, Size: 2 * ChunkSize, Hash: s.Hash}, ErrCorrupt},
		{"bytes appended", append(bytes.Clone(ct), 0), *s, ErrTrailing},
		{"chunk of another file", append(bytes.Clone(otherCT[:cs]), ct[cs:]...), *s, ErrCorrupt},
		{"another file whole", otherCT, *s, ErrCorrupt},
		{"wrong key", ct, Sealed{Key: other.Key, Prefix: s.Prefix, Size: s.Size, Hash: s.Hash}, ErrCorrupt},
		{"wrong hash", ct, Sealed{Key: s.Key, Prefix: s.Prefix, Size: s.Size, Hash: other.Hash}, ErrCorrupt},
		{"short key", ct, Sealed{Key: s.Key[:16], Prefix: s.Prefix, Size: s.Size, Hash: s.Hash}, ErrInvalid},
		{"no hash", ct, Sealed{Key: s.Key, Prefix: s.Prefix, Size: s.Size}, ErrInvalid},
	}
	for _, c := range cases {
		if err := Decrypt(io.Discard, bytes.NewReader(c.ct), &c.s); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestEncryptSizeChanged(t *testing.T) {
	if _, err := Encrypt(io.Discard, bytes.NewReader(make([]byte, 10)), 11); !errors.Is(err, ErrSizeChanged) {
		t.Fatalf("short source: %v", err)
	}
	if _, err := Encrypt(io.Discard, bytes.NewReader(make([]byte, 12)), 11); !errors.Is(err, ErrSizeChanged) {
		t.Fatalf("long source: %v", err)
	}
}

// TestBoundedMemory streams 32 MiB through Encrypt and Decrypt (via a
// file) and checks that neither allocates more than a few chunks in all.
func TestBoundedMemory(t *testing.T) {
	const size = 32 << 20
	f, err := os.Create(filepath.Join(t.TempDir(), "ct"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s *Sealed
	if a := allocated(func() { s, err = Encrypt(f, io.LimitReader(zeros{}, size), size) }); a > 8*ChunkSize {
		t.Errorf("Encrypt of %d bytes allocated %d bytes", size, a)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var out countWriter
	if a := allocated(func() { err = Decrypt(&out, f, s) }); a > 8*ChunkSize {
		t.Errorf("Decrypt of %d bytes allocated %d bytes", size, a)
	}
	if err != nil || out.n != size {
		t.Fatalf("Decrypt: %v, %d bytes", err, out.n)
	}
}

// allocated is the bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
