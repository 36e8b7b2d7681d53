package server

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/schemas/blob"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// This file serves BlobService: the ciphertext of attachments, uploaded
// by a member of a group in chunks and read by the group's members. The
// metadata (owner, group, size, progress, age) is the Store's; the chunks
// go to Config.BlobChunks, the Store itself unless an object store is
// configured. Quotas: Config.MaxBlobSize per blob, Config.BlobOwnerBytes
// per uploader and Config.BlobTotalBytes in all (checked by the store in
// the transaction that creates the blob), and the disk budget when the
// chunks are in the Store. Blobs expire after Config.BlobTTL, complete or
// not. Who may read: the members of the blob's group in the node's public
// view at the time of the call (the same roster that decides who may send
// to the group), so a removed member loses access with its removal.

// Chunk calls are paced, not refused: they do not count against
// Config.RateLimit (a 1 GiB upload is 4096 calls) but wait for a token of
// their own bucket per identity (Config.BlobChunkRate, BlobChunkBurst),
// so a transfer slows down instead of failing, and the wait holds back
// the connection's further calls.

// Defaults of the blob fields of Config.
const (
	DefaultMaxBlobSize    = 1 << 30
	DefaultBlobOwnerBytes = 4 << 30
	DefaultBlobChunkRate  = 400 // chunk calls per second per identity: 100 MiB/s
	DefaultBlobChunkBurst = 64
)

// serveChunk serves a chunk call, paced as above.
func (s *session) serveChunk(ctx context.Context, method string, fn func() error) error {
	return s.serveAdmitted(method, func() error {
		if err := s.srv.chunkPace.get(s.identity).Wait(ctx); err != nil {
			return fail(nodecp.ErrorCode_rateLimited, "%s: %v", method, err)
		}
		return nil
	}, func() (string, error) { return "", fn() })
}

func (cfg *Config) blobDefaults() {
	setDefault(&cfg.BlobChunkRate, DefaultBlobChunkRate)
	setDefault(&cfg.BlobChunkBurst, DefaultBlobChunkBurst)
	setDefault(&cfg.MaxBlobSize, DefaultMaxBlobSize)
	setDefault(&cfg.BlobTTL, cfg.MessageTTL)
	setDefault(&cfg.BlobOwnerBytes, DefaultBlobOwnerBytes)
	setDefault(&cfg.BlobTotalBytes, cfg.DiskBudget)
}

func (s *Server) blobChunks() store.BlobChunks {
	if s.cfg.BlobChunks != nil {
		return s.cfg.BlobChunks
	}
	return s.cfg.Store
}

func (s *Server) blobLimits() store.BlobLimits {
	return store.BlobLimits{OwnerBytes: max(s.cfg.BlobOwnerBytes, 0), TotalBytes: max(s.cfg.BlobTotalBytes, 0)}
}

// expireBlobs deletes the blobs older than Config.BlobTTL, and their
// chunks in an object store. A chunk whose deletion fails stays behind
// unreachable (its metadata is gone); it is logged.
func (s *Server) expireBlobs(ctx context.Context) {
	ids, err := s.cfg.Store.ExpireBlobs(ctx, time.Now().Add(-s.cfg.BlobTTL))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("expiring old blobs failed", "err", err)
		}
		return
	}
	if s.cfg.BlobChunks != nil {
		for _, id := range ids {
			if err := s.cfg.BlobChunks.DeleteBlobChunks(ctx, id); err != nil {
				s.log.Warn("deleting an expired blob's chunks failed", "blob", id, "err", err)
			}
		}
	}
	if len(ids) > 0 {
		s.log.Info("expired old blobs", "count", len(ids), "ttl", s.cfg.BlobTTL)
	}
}

// member requires the caller to be in group's roster.
func (s *session) member(ctx context.Context, method string, group []byte) error {
	if _, err := s.srv.cfg.Store.GroupState(ctx, group, s.identity); err != nil {
		return s.groupStoreError(method, err)
	}
	return nil
}

// readableBlob returns blob id's metadata if the caller is a member of
// its group; an unknown blob looks like a refusal.
func (s *session) readableBlob(ctx context.Context, method string, id []byte) (store.Blob, error) {
	if err := s.registered(ctx, method); err != nil {
		return store.Blob{}, err
	}
	b, err := s.blob(ctx, method, id)
	if err != nil {
		return store.Blob{}, err
	}
	if err := s.member(ctx, method, b.Group); err != nil {
		return store.Blob{}, err
	}
	return b, nil
}

// blob returns blob id's metadata; an unknown blob is unauthorized.
func (s *session) blob(ctx context.Context, method string, id []byte) (store.Blob, error) {
	if err := store.CheckBlobID(id); err != nil {
		return store.Blob{}, fail(nodecp.ErrorCode_invalidArgument, "%s: %v", method, err)
	}
	b, err := s.srv.cfg.Store.GetBlob(ctx, id)
	if errors.Is(err, store.ErrNoBlob) {
		return store.Blob{}, fail(nodecp.ErrorCode_unauthorized, "%s: no blob %x for %x", method, id, s.identity)
	}
	if err != nil {
		return store.Blob{}, s.storeError(method, err)
	}
	return b, nil
}

func (s *session) expires(b *store.Blob) int64 { return b.CreatedAt.Add(s.srv.cfg.BlobTTL).UnixNano() }

func (s *session) CreateBlob(ctx context.Context, call blob.BlobService_createBlob) error {
	const method = "createBlob"
	return s.serve(method, func() error {
		if err := s.registered(ctx, method); err != nil {
			return err
		}
		group, _ := call.Args().GroupId()
		size := call.Args().Size()
		if len(group) == 0 || len(group) > store.MaxGroupIDSize {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: groupId has %d bytes, want 1 to %d", method, len(group), store.MaxGroupIDSize)
		}
		if size > uint64(s.srv.cfg.MaxBlobSize) {
			return fail(nodecp.ErrorCode_tooLarge, "%s: blob of %d bytes, limit %d", method, size, s.srv.cfg.MaxBlobSize)
		}
		if err := s.member(ctx, method, group); err != nil {
			return err
		}
		if s.srv.cfg.BlobChunks == nil {
			if err := s.admitDisk(ctx, method, int(size), true); err != nil {
				return err
			}
		}
		b := store.Blob{ID: make([]byte, store.BlobIDSize), Group: group, Owner: s.identity, Size: size}
		rand.Read(b.ID)
		if err := s.srv.cfg.Store.CreateBlob(ctx, b, s.srv.blobLimits()); err != nil {
			return s.storeError(method, err)
		}
		b.CreatedAt = time.Now()
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		out.SetChunkSize(store.BlobChunkSize)
		out.SetExpiresUnixNano(s.expires(&b))
		return out.SetBlobId(b.ID)
	})
}

func (s *session) PutBlobChunk(ctx context.Context, call blob.BlobService_putBlobChunk) error {
	const method = "putBlobChunk"
	return s.serveChunk(ctx, method, func() error {
		if err := s.registered(ctx, method); err != nil {
			return err
		}
		id, _ := call.Args().BlobId()
		index := call.Args().Index()
		data, _ := call.Args().Data()
		b, err := s.blob(ctx, method, id)
		if err != nil {
			return err
		}
		if string(b.Owner) != string(s.identity) {
			return fail(nodecp.ErrorCode_unauthorized, "%s: blob %x is not %x's upload", method, id, s.identity)
		}
		switch {
		case index >= b.Chunks():
			return fail(nodecp.ErrorCode_invalidArgument, "%s: chunk %d of a blob of %d chunks", method, index, b.Chunks())
		case index > b.Written:
			return fail(nodecp.ErrorCode_invalidArgument, "%s: chunk %d before chunk %d", method, index, b.Written)
		case len(data) != b.ChunkLen(index):
			return fail(nodecp.ErrorCode_invalidArgument, "%s: chunk %d has %d bytes, want %d", method, index, len(data), b.ChunkLen(index))
		}
		if index == b.Written {
			if err := s.srv.blobChunks().PutBlobChunk(ctx, id, index, data); err != nil {
				return s.storeError(method, err)
			}
			if err := s.srv.cfg.Store.AdvanceBlob(ctx, id, index); err != nil {
				return s.storeError(method, err)
			}
			b.Written = max(b.Written, index+1)
		}
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		out.SetComplete(b.Complete())
		return nil
	})
}

func (s *session) BlobInfo(ctx context.Context, call blob.BlobService_blobInfo) error {
	const method = "blobInfo"
	return s.serve(method, func() error {
		id, _ := call.Args().BlobId()
		b, err := s.readableBlob(ctx, method, id)
		if err != nil {
			return err
		}
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		out.SetSize(b.Size)
		out.SetChunkSize(store.BlobChunkSize)
		out.SetComplete(b.Complete())
		out.SetExpiresUnixNano(s.expires(&b))
		return nil
	})
}

func (s *session) GetBlobChunk(ctx context.Context, call blob.BlobService_getBlobChunk) error {
	const method = "getBlobChunk"
	return s.serveChunk(ctx, method, func() error {
		id, _ := call.Args().BlobId()
		index := call.Args().Index()
		b, err := s.readableBlob(ctx, method, id)
		if err != nil {
			return err
		}
		switch {
		case !b.Complete():
			return fail(nodecp.ErrorCode_blobIncomplete, "%s: blob %x has %d of %d chunks", method, id, b.Written, b.Chunks())
		case index >= b.Chunks():
			return fail(nodecp.ErrorCode_invalidArgument, "%s: chunk %d of a blob of %d chunks", method, index, b.Chunks())
		}
		data, err := s.srv.blobChunks().BlobChunk(ctx, id, index)
		if err != nil {
			return s.storeError(method, err)
		}
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		return out.SetData(data)
	})
}
