// Package s3blob keeps the chunks of the node's blobs (attachments'
// ciphertext) in an S3-compatible object store instead of the node's
// database, for nodes whose attachments outgrow it. Only the chunks go
// there: the blobs' metadata, quotas and expiry stay in the node's store
// (store.Blobs), so that they keep their transactions; the node deletes
// an expired blob's objects after its metadata.
//
// Each chunk is one object, <prefix><blob id in hex>/<chunk index as 8
// hex digits>, of at most store.BlobChunkSize bytes, written with one PUT
// (no multipart upload). The object store sees what the node sees:
// ciphertext, sizes and timing.
//
// It is tested against SeaweedFS's S3 gateway (package internal/s3test);
// any S3-compatible store should do (MinIO, Ceph RGW, AWS S3). The client
// is minio-go.
package s3blob

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/quicproquo/quicproquo/node/store"
)

// Config says where the chunks go.
type Config struct {
	Endpoint  string // host:port of the S3 API
	Bucket    string // an existing bucket
	Prefix    string // of every object name; may be empty
	Region    string // may be empty
	AccessKey string // empty with SecretKey: anonymous requests
	SecretKey string
	Insecure  bool // plain HTTP instead of HTTPS (a store on loopback)
}

// Store is a store.BlobChunks on an S3-compatible object store.
type Store struct {
	cfg Config
	c   *minio.Client
	log *slog.Logger
}

var _ store.BlobChunks = (*Store)(nil)

// Open connects to the object store and checks that the bucket exists.
// A nil logger discards.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, fmt.Errorf("s3blob: endpoint and bucket are required: %w", store.ErrInvalid)
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: !cfg.Insecure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3blob: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3blob: no bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, store.ErrInvalid)
	}
	logger.Info("blob chunks in an object store", "endpoint", cfg.Endpoint, "bucket", cfg.Bucket, "prefix", cfg.Prefix)
	return &Store{cfg: cfg, c: c, log: logger}, nil
}

func (s *Store) dir(id []byte) string { return s.cfg.Prefix + hex.EncodeToString(id) + "/" }

func (s *Store) key(id []byte, index uint32) string { return fmt.Sprintf("%s%08x", s.dir(id), index) }

// PutBlobChunk implements store.BlobChunks.
func (s *Store) PutBlobChunk(ctx context.Context, id []byte, index uint32, data []byte) error {
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("s3blob: put chunk: %w", err)
	}
	if len(data) > store.BlobChunkSize {
		return fmt.Errorf("s3blob: put chunk of %d bytes: %w", len(data), store.ErrInvalid)
	}
	_, err := s.c.PutObject(ctx, s.cfg.Bucket, s.key(id, index), bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
	if err != nil {
		return fmt.Errorf("s3blob: put chunk %x/%d: %w", id, index, err)
	}
	return nil
}

// BlobChunk implements store.BlobChunks.
func (s *Store) BlobChunk(ctx context.Context, id []byte, index uint32) ([]byte, error) {
	if err := store.CheckBlobID(id); err != nil {
		return nil, fmt.Errorf("s3blob: chunk: %w", err)
	}
	obj, err := s.c.GetObject(ctx, s.cfg.Bucket, s.key(id, index), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.readError(id, index, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, store.BlobChunkSize+1))
	if err != nil {
		return nil, s.readError(id, index, err)
	}
	if len(data) > store.BlobChunkSize {
		return nil, fmt.Errorf("s3blob: chunk %x/%d is larger than a chunk", id, index)
	}
	return data, nil
}

func (s *Store) readError(id []byte, index uint32, err error) error {
	if r := minio.ToErrorResponse(err); r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound {
		return fmt.Errorf("s3blob: chunk %x/%d: %w", id, index, store.ErrNoBlob)
	}
	return fmt.Errorf("s3blob: chunk %x/%d: %w", id, index, err)
}

// DeleteBlobChunks implements store.BlobChunks.
func (s *Store) DeleteBlobChunks(ctx context.Context, id []byte) error {
	if err := store.CheckBlobID(id); err != nil {
		return fmt.Errorf("s3blob: delete: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objects := make(chan minio.ObjectInfo)
	var listErr error
	go func() {
		defer close(objects)
		for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.dir(id), Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			select {
			case objects <- o:
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for r := range s.c.RemoveObjects(ctx, s.cfg.Bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("%s: %w", r.ObjectName, r.Err))
	}
	if err := errors.Join(append(errs, listErr)...); err != nil {
		return fmt.Errorf("s3blob: delete %x: %w", id, err)
	}
	return nil
}
