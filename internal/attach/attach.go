package attach

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ChunkSize is the plaintext size of every chunk but the last.
const ChunkSize = 64 << 10

// Sizes of the format.
const (
	KeySize    = 32 // AES-256
	PrefixSize = 7  // the random part of each chunk's nonce
	TagSize    = 16 // GCM's tag, added to each chunk
	HashSize   = sha256.Size
)

// EncAlg is the value of an attachment reference's encryption algorithm
// for this format: a number from the private-use range of the IANA AEAD
// registry (65000-65535), since chunked AES-256-GCM is not one AEAD.
const EncAlg = 65001

// MaxSize is the largest plaintext the format takes (2^32 chunks).
const MaxSize = uint64(ChunkSize) << 32

var aad = []byte("qpq-attach-v1")

// Errors of Decrypt and Encrypt; match them with errors.Is.
var (
	// ErrCorrupt: a chunk does not authenticate (a changed, moved or
	// foreign chunk, a wrong key) or the ciphertext's hash differs.
	ErrCorrupt = errors.New("attach: ciphertext is corrupt")
	// ErrTruncated: the ciphertext ends before its final chunk.
	ErrTruncated = errors.New("attach: ciphertext is truncated")
	// ErrTrailing: bytes follow the final chunk.
	ErrTrailing = errors.New("attach: bytes after the final chunk")
	// ErrInvalid: a key, nonce prefix, size or hash of the wrong form.
	ErrInvalid = errors.New("attach: invalid parameter")
	// ErrSizeChanged: the source gave another number of bytes than
	// announced (a file that changed while it was read).
	ErrSizeChanged = errors.New("attach: source size changed while reading")
)

// Sealed is what a receiver needs to fetch and open the ciphertext.
type Sealed struct {
	Key        []byte // KeySize bytes; a secret: goes only into the MLS-encrypted message
	Prefix     []byte // PrefixSize bytes
	Size       uint64 // plaintext bytes
	Hash       []byte // SHA-256 of the ciphertext
	CipherSize uint64 // CiphertextSize(Size)
}

// Wipe zeroes the key.
func (s *Sealed) Wipe() { clear(s.Key) }

// chunks is the number of chunks of a plaintext of n bytes.
func chunks(n uint64) uint64 {
	if n == 0 {
		return 1
	}
	return (n + ChunkSize - 1) / ChunkSize
}

// CiphertextSize is the ciphertext's size for n bytes of plaintext.
func CiphertextSize(n uint64) uint64 { return n + chunks(n)*TagSize }

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key of %d bytes, want %d: %w", len(key), KeySize, ErrInvalid)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func nonce(dst *[12]byte, prefix []byte, index uint64, final bool) {
	copy(dst[:PrefixSize], prefix)
	binary.BigEndian.PutUint32(dst[PrefixSize:], uint32(index))
	dst[11] = 0
	if final {
		dst[11] = 1
	}
}

// Encrypt reads exactly size bytes of plaintext from src, writes the
// ciphertext to dst and returns the fresh key and what a reference needs.
// A src that ends early or has more than size bytes is ErrSizeChanged.
func Encrypt(dst io.Writer, src io.Reader, size uint64) (*Sealed, error) {
	if size > MaxSize {
		return nil, fmt.Errorf("%d bytes, limit %d: %w", size, MaxSize, ErrInvalid)
	}
	s := &Sealed{Key: make([]byte, KeySize), Prefix: make([]byte, PrefixSize), Size: size, CipherSize: CiphertextSize(size)}
	rand.Read(s.Key)
	rand.Read(s.Prefix)
	aead, err := newAEAD(s.Key)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	out := io.MultiWriter(dst, h)
	buf := make([]byte, ChunkSize, ChunkSize+TagSize)
	defer clear(buf)
	var n [12]byte
	total := chunks(size)
	for i := uint64(0); i < total; i++ {
		want := uint64(ChunkSize)
		if i == total-1 {
			want = size - i*ChunkSize
		}
		p := buf[:want]
		if _, err := io.ReadFull(src, p); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("read chunk %d: %w", i, ErrSizeChanged)
			}
			return nil, fmt.Errorf("read chunk %d: %w", i, err)
		}
		nonce(&n, s.Prefix, i, i == total-1)
		if _, err := out.Write(aead.Seal(p[:0], n[:], p, aad)); err != nil {
			return nil, fmt.Errorf("write chunk %d: %w", i, err)
		}
	}
	var one [1]byte
	if _, err := io.ReadFull(src, one[:]); err == nil {
		return nil, fmt.Errorf("more than %d bytes: %w", size, ErrSizeChanged)
	}
	s.Hash = h.Sum(nil)
	return s, nil
}

// Decrypt reads the ciphertext of s from src, checks it chunk by chunk
// and writes the plaintext to dst. Plaintext reaches dst only once its
// chunk authenticates, but a later chunk may still fail: only a nil error
// means the whole file is genuine (the hash of the ciphertext is checked
// at the end, the last thing before that answer).
func Decrypt(dst io.Writer, src io.Reader, s *Sealed) error {
	if len(s.Prefix) != PrefixSize || len(s.Hash) != HashSize || s.Size > MaxSize {
		return fmt.Errorf("prefix of %d bytes, hash of %d, size %d: %w", len(s.Prefix), len(s.Hash), s.Size, ErrInvalid)
	}
	aead, err := newAEAD(s.Key)
	if err != nil {
		return err
	}
	var h hash.Hash = sha256.New()
	in := io.TeeReader(src, h)
	buf := make([]byte, ChunkSize+TagSize)
	defer clear(buf)
	var n [12]byte
	total := chunks(s.Size)
	for i := uint64(0); i < total; i++ {
		want := uint64(ChunkSize)
		if i == total-1 {
			want = s.Size - i*ChunkSize
		}
		c := buf[:want+TagSize]
		if _, err := io.ReadFull(in, c); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("chunk %d of %d: %w", i, total, ErrTruncated)
			}
			return fmt.Errorf("read chunk %d: %w", i, err)
		}
		nonce(&n, s.Prefix, i, i == total-1)
		p, err := aead.Open(c[:0], n[:], c, aad)
		if err != nil {
			return fmt.Errorf("chunk %d of %d: %w", i, total, ErrCorrupt)
		}
		if _, err := dst.Write(p); err != nil {
			return fmt.Errorf("write chunk %d: %w", i, err)
		}
	}
	var one [1]byte
	if _, err := io.ReadFull(in, one[:]); err == nil {
		return ErrTrailing
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), s.Hash) != 1 {
		return fmt.Errorf("ciphertext hash differs: %w", ErrCorrupt)
	}
	return nil
}
