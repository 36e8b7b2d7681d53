package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// BlobID returns a distinct, deterministic blob id for label.
func BlobID(label string) []byte { return Key("blob " + label)[:store.BlobIDSize] }

func runBlobs(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Blob/Lifecycle", testBlobLifecycle},
		{"Blob/Quotas", testBlobQuotas},
		{"Blob/Expire", testBlobExpire},
		{"Blob/Invalid", testBlobInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	t.Run("Blob/Chunks", func(t *testing.T) { RunBlobChunks(t, open(t)) })
}

func newBlob(label string, size uint64) store.Blob {
	return store.Blob{ID: BlobID(label), Group: GroupID(label), Owner: Key("owner " + label), Size: size}
}

func testBlobLifecycle(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	b := newBlob("life", 2*store.BlobChunkSize+5)
	noErr(t, "CreateBlob", s.CreateBlob(ctx, b, store.BlobLimits{}))
	if err := s.CreateBlob(ctx, b, store.BlobLimits{}); err == nil {
		t.Fatal("CreateBlob of a taken id succeeded")
	}
	got, err := s.GetBlob(ctx, b.ID)
	noErr(t, "GetBlob", err)
	if !bytes.Equal(got.Group, b.Group) || !bytes.Equal(got.Owner, b.Owner) || got.Size != b.Size || got.Written != 0 ||
		got.Chunks() != 3 || got.Complete() || got.ChunkLen(0) != store.BlobChunkSize || got.ChunkLen(2) != 5 {
		t.Fatalf("GetBlob = %+v (chunks %d), want %+v", got, got.Chunks(), b)
	}
	if time.Since(got.CreatedAt) > time.Hour || time.Until(got.CreatedAt) > time.Hour {
		t.Fatalf("CreatedAt = %v, not now", got.CreatedAt)
	}
	wantErr(t, "AdvanceBlob out of order", s.AdvanceBlob(ctx, b.ID, 1), store.ErrInvalid)
	for i := range uint32(3) {
		noErr(t, "AdvanceBlob", s.AdvanceBlob(ctx, b.ID, i))
		noErr(t, "AdvanceBlob again", s.AdvanceBlob(ctx, b.ID, i))
	}
	got, err = s.GetBlob(ctx, b.ID)
	noErr(t, "GetBlob", err)
	if got.Written != 3 || !got.Complete() {
		t.Fatalf("after 3 chunks: %+v", got)
	}
	_, err = s.GetBlob(ctx, BlobID("none"))
	wantErr(t, "GetBlob of an unknown id", err, store.ErrNoBlob)
	wantErr(t, "AdvanceBlob of an unknown id", s.AdvanceBlob(ctx, BlobID("none"), 0), store.ErrNoBlob)
}

func testBlobQuotas(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	lim := store.BlobLimits{OwnerBytes: 100, TotalBytes: 150}
	a := newBlob("quota a", 60)
	noErr(t, "CreateBlob", s.CreateBlob(ctx, a, lim))
	a2 := a
	a2.ID, a2.Size = BlobID("quota a2"), 41
	wantErr(t, "CreateBlob past the owner's quota", s.CreateBlob(ctx, a2, lim), store.ErrQuota)
	a2.Size = 40
	noErr(t, "CreateBlob up to the owner's quota", s.CreateBlob(ctx, a2, lim))
	b := newBlob("quota b", 51)
	wantErr(t, "CreateBlob past the total", s.CreateBlob(ctx, b, lim), store.ErrLimit)
	b.Size = 50
	noErr(t, "CreateBlob up to the total", s.CreateBlob(ctx, b, lim))
}

func testBlobExpire(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	b := newBlob("expire", 10)
	noErr(t, "CreateBlob", s.CreateBlob(ctx, b, store.BlobLimits{OwnerBytes: 10}))
	noErr(t, "PutBlobChunk", s.PutBlobChunk(ctx, b.ID, 0, make([]byte, 10)))
	ids, err := s.ExpireBlobs(ctx, time.Now().Add(-time.Hour))
	noErr(t, "ExpireBlobs (none old)", err)
	if len(ids) != 0 {
		t.Fatalf("ExpireBlobs deleted %d young blobs", len(ids))
	}
	ids, err = s.ExpireBlobs(ctx, time.Now().Add(time.Hour))
	noErr(t, "ExpireBlobs", err)
	if len(ids) != 1 || !bytes.Equal(ids[0], b.ID) {
		t.Fatalf("ExpireBlobs = %x, want [%x]", ids, b.ID)
	}
	_, err = s.GetBlob(ctx, b.ID)
	wantErr(t, "GetBlob after expiry", err, store.ErrNoBlob)
	_, err = s.BlobChunk(ctx, b.ID, 0)
	wantErr(t, "BlobChunk after expiry", err, store.ErrNoBlob)
	// The quota is free again.
	noErr(t, "CreateBlob after expiry", s.CreateBlob(ctx, newBlob("expire", 10), store.BlobLimits{OwnerBytes: 10}))
}

func testBlobInvalid(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	for name, b := range map[string]store.Blob{
		"short id":   {ID: []byte{1}, Group: GroupID("g"), Owner: Key("o")},
		"no group":   {ID: BlobID("x"), Owner: Key("o")},
		"long group": {ID: BlobID("x"), Group: make([]byte, store.MaxGroupIDSize+1), Owner: Key("o")},
		"bad owner":  {ID: BlobID("x"), Group: GroupID("g"), Owner: []byte{1}},
		"huge":       {ID: BlobID("x"), Group: GroupID("g"), Owner: Key("o"), Size: store.MaxBlobSize + 1},
	} {
		wantErr(t, "CreateBlob "+name, s.CreateBlob(ctx, b, store.BlobLimits{}), store.ErrInvalid)
	}
	_, err := s.GetBlob(ctx, []byte{1, 2})
	wantErr(t, "GetBlob short id", err, store.ErrInvalid)
	wantErr(t, "PutBlobChunk short id", s.PutBlobChunk(ctx, nil, 0, nil), store.ErrInvalid)
}

// RunBlobChunks checks a store.BlobChunks (the node's store, or an
// object store for blobs) on its own.
func RunBlobChunks(t *testing.T, c store.BlobChunks) {
	ctx := testCtx(t)
	id, other := BlobID(fmt.Sprintf("chunks %d", time.Now().UnixNano())), BlobID(fmt.Sprintf("other %d", time.Now().UnixNano()))
	_, err := c.BlobChunk(ctx, id, 0)
	wantErr(t, "BlobChunk of nothing", err, store.ErrNoBlob)
	big := bytes.Repeat([]byte{7}, store.BlobChunkSize)
	noErr(t, "PutBlobChunk", c.PutBlobChunk(ctx, id, 0, big))
	noErr(t, "PutBlobChunk", c.PutBlobChunk(ctx, id, 1, []byte{}))
	noErr(t, "PutBlobChunk other", c.PutBlobChunk(ctx, other, 0, []byte("other")))
	noErr(t, "PutBlobChunk again", c.PutBlobChunk(ctx, id, 2, []byte("first")))
	noErr(t, "PutBlobChunk replaces", c.PutBlobChunk(ctx, id, 2, []byte("second")))
	for i, want := range [][]byte{big, {}, []byte("second")} {
		got, err := c.BlobChunk(ctx, id, uint32(i))
		noErr(t, "BlobChunk", err)
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d has %d bytes, want %d", i, len(got), len(want))
		}
	}
	noErr(t, "DeleteBlobChunks", c.DeleteBlobChunks(ctx, id))
	noErr(t, "DeleteBlobChunks again", c.DeleteBlobChunks(ctx, id))
	_, err = c.BlobChunk(ctx, id, 0)
	wantErr(t, "BlobChunk after delete", err, store.ErrNoBlob)
	got, err := c.BlobChunk(ctx, other, 0)
	if err != nil || string(got) != "other" {
		t.Fatalf("another blob's chunk after delete: %q, %v", got, err)
	}
}
