package attach

import (
	"bytes"
	"io"
	"testing"
)

// FuzzDecrypt feeds Decrypt ciphertexts of real files, mutated, under
// the real key and a claimed size: it must never panic, and whatever it
// accepts must be the genuine ciphertext (nothing else has its hash).
func FuzzDecrypt(f *testing.F) {
	plain := bytes.Repeat([]byte("qpq attachment "), (2*ChunkSize+100)/15)
	s, ct := seal(f, plain)
	f.Add(ct, s.Size)
	f.Add(ct[:ChunkSize+TagSize], uint64(ChunkSize))
	f.Add([]byte{}, uint64(0))
	f.Add(ct[:TagSize], uint64(0))
	f.Fuzz(func(t *testing.T, c []byte, size uint64) {
		claim := Sealed{Key: s.Key, Prefix: s.Prefix, Size: size % (4 * ChunkSize), Hash: s.Hash}
		if err := Decrypt(io.Discard, bytes.NewReader(c), &claim); err == nil && !bytes.Equal(c, ct) {
			t.Fatalf("accepted %d bytes that are not the ciphertext", len(c))
		}
	})
}
