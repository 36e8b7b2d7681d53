package server_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/internal/s3test"
	"github.com/quicproquo/quicproquo/node/store/s3blob"

	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// blobTestSize spans several chunks with a short last one.
const blobTestSize = 3*store.BlobChunkSize + 7

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// A member uploads a blob for its group and the other member reads it;
// a stranger, and then a removed member, are refused as if the blob did
// not exist, and nobody but the uploader writes to it.
func TestBlobMembersOnly(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	BlobMembersOnly(t, n)
}

// BlobMembersOnly is TestBlobMembersOnly on any node (the S3 backend's
// tests run it too).
func BlobMembersOnly(t *testing.T, n *testNode) {
	ctx := testCtx(t)
	alice, bob, mallory := grpMember(t, n), grpMember(t, n), grpMember(t, n)
	g := alice.Create(t)
	alice.Add(t, bob)
	data := randomBytes(blobTestSize)
	var last uint64
	id, expires, err := alice.Conn.UploadBlob(ctx, g, uint64(len(data)), bytes.NewReader(data), func(done uint64) { last = done })
	if err != nil {
		t.Fatalf("UploadBlob: %v", err)
	}
	if last != uint64(len(data)) || time.Until(expires) < time.Hour {
		t.Fatalf("progress ended at %d of %d; expires %v", last, len(data), expires)
	}
	var got bytes.Buffer
	if err := bob.Conn.DownloadBlob(ctx, id, uint64(len(data)), &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("bob's download: %v (%d bytes)", err, got.Len())
	}
	err = bob.Conn.DownloadBlob(ctx, id, uint64(len(data))+1, &got, nil)
	grpNodeErr(t, "download claiming another size", err, client.ErrInvalidArgument)

	// The stranger: no info, no chunk, no upload to the group, no write
	// to the blob; an unknown blob looks the same.
	_, err = mallory.Conn.BlobInfo(ctx, id)
	grpNodeErr(t, "BlobInfo by a stranger", err, client.ErrUnauthorized)
	err = mallory.Conn.DownloadBlob(ctx, id, uint64(len(data)), &got, nil)
	grpNodeErr(t, "DownloadBlob by a stranger", err, client.ErrUnauthorized)
	_, err = mallory.Conn.BlobInfo(ctx, randomBytes(store.BlobIDSize))
	grpNodeErr(t, "BlobInfo of an unknown blob", err, client.ErrUnauthorized)
	_, _, _, err = mallory.Conn.CreateBlob(ctx, g, 10)
	grpNodeErr(t, "CreateBlob by a stranger", err, client.ErrUnauthorized)
	_, err = mallory.Conn.PutBlobChunk(ctx, id, 0, data[:store.BlobChunkSize])
	grpNodeErr(t, "PutBlobChunk by a stranger", err, client.ErrUnauthorized)
	// A member writes only its own uploads.
	_, err = bob.Conn.PutBlobChunk(ctx, id, 0, data[:store.BlobChunkSize])
	grpNodeErr(t, "PutBlobChunk by another member", err, client.ErrUnauthorized)

	// Alice removes bob: he loses access with his removal.
	rm, err := alice.Group.RemoveMembers([]mls.LeafIndex{bob.Group.OwnLeaf()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.Submit(t, rm)
	_, err = bob.Conn.BlobInfo(ctx, id)
	grpNodeErr(t, "BlobInfo by a removed member", err, client.ErrUnauthorized)
	if info, err := alice.Conn.BlobInfo(ctx, id); err != nil || info.Size != uint64(len(data)) || !info.Complete {
		t.Fatalf("alice's BlobInfo = %+v, %v", info, err)
	}
}

// Chunks go in order and at their length; an unfinished blob cannot be
// read; the empty blob is one empty chunk.
func TestBlobUploadSteps(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice := grpMember(t, n)
	g := alice.Create(t)
	id, chunk, _, err := alice.Conn.CreateBlob(ctx, g, 2*store.BlobChunkSize)
	if err != nil || chunk != store.BlobChunkSize {
		t.Fatalf("CreateBlob: chunk %d, %v", chunk, err)
	}
	full := make([]byte, chunk)
	_, err = alice.Conn.PutBlobChunk(ctx, id, 1, full)
	grpNodeErr(t, "chunk out of order", err, client.ErrInvalidArgument)
	_, err = alice.Conn.PutBlobChunk(ctx, id, 0, full[:10])
	grpNodeErr(t, "short chunk", err, client.ErrInvalidArgument)
	_, err = alice.Conn.PutBlobChunk(ctx, id, 2, full)
	grpNodeErr(t, "chunk past the end", err, client.ErrInvalidArgument)
	if done, err := alice.Conn.PutBlobChunk(ctx, id, 0, full); err != nil || done {
		t.Fatalf("chunk 0: complete %v, %v", done, err)
	}
	if done, err := alice.Conn.PutBlobChunk(ctx, id, 0, full); err != nil || done {
		t.Fatalf("chunk 0 again: complete %v, %v", done, err)
	}
	err = alice.Conn.DownloadBlob(ctx, id, 2*store.BlobChunkSize, &bytes.Buffer{}, nil)
	grpNodeErr(t, "download of an unfinished blob", err, client.ErrBlobIncomplete)
	if done, err := alice.Conn.PutBlobChunk(ctx, id, 1, full); err != nil || !done {
		t.Fatalf("chunk 1: complete %v, %v", done, err)
	}
	if err := alice.Conn.DownloadBlob(ctx, id, 2*store.BlobChunkSize, &bytes.Buffer{}, nil); err != nil {
		t.Fatal(err)
	}
	id, _, err = alice.Conn.UploadBlob(ctx, g, 0, bytes.NewReader(nil), nil)
	if err != nil {
		t.Fatalf("empty upload: %v", err)
	}
	var got bytes.Buffer
	if err := alice.Conn.DownloadBlob(ctx, id, 0, &got, nil); err != nil || got.Len() != 0 {
		t.Fatalf("empty download: %v, %d bytes", err, got.Len())
	}
}

// The size limit, the uploader's quota and expiry.
func TestBlobQuotaAndExpiry(t *testing.T) {
	n := startTestNode(t, server.Config{MaxBlobSize: 1000, BlobOwnerBytes: 1500, BlobTTL: time.Hour}, store.Limits{})
	ctx := testCtx(t)
	alice := grpMember(t, n)
	g := alice.Create(t)
	_, _, _, err := alice.Conn.CreateBlob(ctx, g, 1001)
	grpNodeErr(t, "blob above the size limit", err, client.ErrTooLarge)
	if _, _, _, err := alice.Conn.CreateBlob(ctx, g, 1000); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = alice.Conn.CreateBlob(ctx, g, 501)
	grpNodeErr(t, "blob past the uploader's quota", err, client.ErrQuota)

	short := startTestNode(t, server.Config{BlobTTL: blobTestTTL, ExpireInterval: 20 * time.Millisecond}, store.Limits{})
	id := uploadAndAwaitExpiry(t, grpMember(t, short))
	if _, err := short.store.BlobChunk(ctx, id, 0); err == nil {
		t.Fatal("an expired blob's chunk is still stored")
	}
}

// The same on a node whose chunks are in a real S3 server, and on one
// whose store is PostgreSQL.
func TestBlobMembersOnlyS3(t *testing.T) {
	n, _ := startS3Node(t, server.Config{})
	BlobMembersOnly(t, n)
}

func TestBlobMembersOnlyPostgres(t *testing.T) {
	BlobMembersOnly(t, startPostgresNode(t, pgtest.NewDatabase(t)))
}

// startS3Node is startTestNode with the blob chunks in a new bucket of
// the test S3 server.
func startS3Node(t *testing.T, cfg server.Config) (*testNode, *s3blob.Store) {
	t.Helper()
	chunks, err := s3blob.Open(testCtx(t), s3blob.Config{Endpoint: s3test.Endpoint(t), Bucket: s3test.Bucket(t), Insecure: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BlobChunks = chunks
	return startTestNode(t, cfg, store.Limits{}), chunks
}

// An expired blob's objects leave the object store.
func TestBlobExpiryS3(t *testing.T) {
	n, chunks := startS3Node(t, server.Config{BlobTTL: blobTestTTL, ExpireInterval: 20 * time.Millisecond})
	alice := grpMember(t, n)
	id := uploadAndAwaitExpiry(t, alice)
	// The sweep deletes the objects right after the metadata that
	// BlobInfo reads, so they may outlive it by a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := chunks.BlobChunk(testCtx(t), id, 0)
		if errors.Is(err, store.ErrNoBlob) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("an expired blob's chunk in the object store 5 s after its metadata: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blobTestTTL is long enough for a small upload on a loaded machine.
const blobTestTTL = 2 * time.Second

// uploadAndAwaitExpiry uploads a small blob to a new group of m's and
// waits until the node has forgotten it.
func uploadAndAwaitExpiry(t *testing.T, m *grouptest.Member) []byte {
	t.Helper()
	ctx := testCtx(t)
	g := m.Create(t)
	id, _, err := m.Conn.UploadBlob(ctx, g, 3, bytes.NewReader([]byte("abc")), nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := m.Conn.BlobInfo(ctx, id)
		if err != nil {
			grpNodeErr(t, "BlobInfo after expiry", err, client.ErrUnauthorized)
			return id
		}
		select {
		case <-ctx.Done():
			t.Fatal("the blob did not expire")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Chunk calls are paced by their own bucket, not refused by the request
// rate limit: a transfer of more chunks than the request burst goes
// through, at the chunk rate.
func TestBlobChunksPaced(t *testing.T) {
	n := startTestNode(t, server.Config{RateLimit: 1, RateBurst: 20, BlobChunkRate: 200, BlobChunkBurst: 8}, store.Limits{})
	ctx := testCtx(t)
	alice := grpMember(t, n)
	g := alice.Create(t)
	const chunks = 40
	data := randomBytes(chunks * store.BlobChunkSize)
	start := time.Now()
	id, _, err := alice.Conn.UploadBlob(ctx, g, uint64(len(data)), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatalf("upload of %d chunks: %v", chunks, err)
	}
	var got bytes.Buffer
	if err := alice.Conn.DownloadBlob(ctx, id, uint64(len(data)), &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("download of %d chunks: %v", chunks, err)
	}
	if d, min := time.Since(start), time.Duration(2*chunks-8)*time.Second/200; d < min {
		t.Fatalf("%d chunk calls took %v, less than the chunk rate allows (%v)", 2*chunks, d, min)
	}
}
