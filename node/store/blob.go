package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Blobs: attachments travel as blobs: ciphertext a member uploads for its group
// and the group's members download (the key is in the MLS-encrypted
// message, never here). A blob is created with its size and group, then
// written chunk by chunk in order (BlobChunkSize bytes each, the last one
// shorter), and readable once its last chunk is stored. The metadata
// (Blob) lives in the Store, so that quotas and expiry are one
// transaction; the chunks live in a BlobChunks, which is the Store
// itself by default or an S3-compatible object store (package s3blob).
//
// Quotas (BlobLimits): the live bytes of one owner's blobs, and of all
// blobs together; CreateBlob refuses past either (ErrQuota, ErrLimit), so
// an upload is refused before its first byte. Expiry: ExpireBlobs deletes
// the blobs created before a cutoff (complete or not) with their chunks
// in the store; a node with another BlobChunks deletes those too.

// BlobChunkSize is the size of every chunk of a blob but the last.
const BlobChunkSize = 256 << 10

// BlobIDSize is the length of a blob id (random, chosen by the node).
const BlobIDSize = 16

// ErrNoBlob: no blob (or chunk) with that id, or it expired.
var ErrNoBlob = errors.New("store: no such blob")

// Blob is a blob's metadata.
type Blob struct {
	ID        []byte // BlobIDSize bytes
	Group     []byte // the group whose members may read it
	Owner     []byte // the identity that uploads it
	Size      uint64 // bytes of ciphertext
	Written   uint32 // chunks stored so far (0 to Chunks())
	CreatedAt time.Time
}

// Chunks is the number of chunks of the blob (at least one).
func (b *Blob) Chunks() uint32 { return BlobChunkCount(b.Size) }

// Complete reports whether every chunk is stored.
func (b *Blob) Complete() bool { return b.Written == b.Chunks() }

// ChunkLen is the length of chunk index.
func (b *Blob) ChunkLen(index uint32) int {
	if index+1 < b.Chunks() {
		return BlobChunkSize
	}
	return int(b.Size - uint64(index)*BlobChunkSize)
}

// BlobChunkCount is the number of chunks of a blob of size bytes.
func BlobChunkCount(size uint64) uint32 {
	if size == 0 {
		return 1
	}
	return uint32((size + BlobChunkSize - 1) / BlobChunkSize)
}

// MaxBlobSize is the largest blob the chunk numbering allows.
const MaxBlobSize = uint64(BlobChunkSize) * (1<<32 - 1)

// BlobLimits bounds the live blobs; a zero field is unbounded.
type BlobLimits struct {
	OwnerBytes int64 // all blobs of one owner
	TotalBytes int64 // all blobs
}

// BlobChunks keeps the chunks of blobs.
type BlobChunks interface {
	// PutBlobChunk stores chunk index of blob id; storing it again
	// replaces it.
	PutBlobChunk(ctx context.Context, id []byte, index uint32, data []byte) error
	// BlobChunk returns chunk index of blob id, or ErrNoBlob.
	BlobChunk(ctx context.Context, id []byte, index uint32) ([]byte, error)
	// DeleteBlobChunks deletes every chunk of blob id; none is no error.
	DeleteBlobChunks(ctx context.Context, id []byte) error
}

// Blobs is the blob half of a Store (see "Blobs" above).
type Blobs interface {
	BlobChunks
	// CreateBlob stores b's metadata (Written 0) if the limits allow
	// (ErrQuota for the owner's, ErrLimit for the total).
	CreateBlob(ctx context.Context, b Blob, limits BlobLimits) error
	// GetBlob returns blob id's metadata, or ErrNoBlob.
	GetBlob(ctx context.Context, id []byte) (Blob, error)
	// AdvanceBlob records that chunk index of blob id is stored: Written
	// becomes index+1 if it was index, and stays as it is if it was
	// more; a chunk out of order (Written < index) is ErrInvalid.
	AdvanceBlob(ctx context.Context, id []byte, index uint32) error
	// ExpireBlobs deletes the blobs created before cutoff, with their
	// chunks in this store, and returns their ids.
	ExpireBlobs(ctx context.Context, cutoff time.Time) ([][]byte, error)
}

// CheckBlob checks a new blob's fields.
func CheckBlob(b *Blob) error {
	switch {
	case len(b.ID) != BlobIDSize:
		return fmt.Errorf("blob id of %d bytes, want %d: %w", len(b.ID), BlobIDSize, ErrInvalid)
	case len(b.Group) == 0 || len(b.Group) > MaxGroupIDSize:
		return fmt.Errorf("group id of %d bytes: %w", len(b.Group), ErrInvalid)
	case b.Size > MaxBlobSize:
		return fmt.Errorf("blob of %d bytes, limit %d: %w", b.Size, MaxBlobSize, ErrInvalid)
	}
	return CheckKey("owner", b.Owner)
}

// CheckBlobID checks a blob id argument.
func CheckBlobID(id []byte) error {
	if len(id) != BlobIDSize {
		return fmt.Errorf("blob id of %d bytes, want %d: %w", len(id), BlobIDSize, ErrInvalid)
	}
	return nil
}

// CheckBlobRoom applies limits to a new blob of size bytes, given the
// live bytes of its owner and of all blobs before it.
func (l BlobLimits) CheckBlobRoom(size uint64, owner, total int64) error {
	if l.OwnerBytes > 0 && owner+int64(size) > l.OwnerBytes {
		return fmt.Errorf("owner's blobs would take %d bytes, limit %d: %w", owner+int64(size), l.OwnerBytes, ErrQuota)
	}
	if l.TotalBytes > 0 && total+int64(size) > l.TotalBytes {
		return fmt.Errorf("blobs would take %d bytes, limit %d: %w", total+int64(size), l.TotalBytes, ErrLimit)
	}
	return nil
}
