package client

import (
	"context"
	"fmt"
	"io"
	"time"

	"capnproto.org/go/capnp/v3"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/schemas/blob"
)

// blobWindow is how many chunk calls an upload or download keeps in
// flight: enough to hide the round trip, few enough to bound memory at a
// megabyte or so.
const blobWindow = 4

// BlobInfo is what the node knows of a blob.
type BlobInfo struct {
	Size      uint64
	ChunkSize uint32
	Complete  bool
	Expires   time.Time
}

// Progress is told the bytes done so far of an upload or download.
type Progress func(done uint64)

// CreateBlob starts a blob of size bytes for groupID (the client's
// identity must be a member) and returns its id, chunk size and expiry.
// UploadBlob does this and the chunks; this and PutBlobChunk are the steps.
func (c *Client) CreateBlob(ctx context.Context, groupID []byte, size uint64) (id []byte, chunkSize int, expires time.Time, err error) {
	fut, release := c.node.CreateBlob(ctx, func(p blob.BlobService_createBlob_Params) error {
		p.SetSize(size)
		return p.SetGroupId(groupID)
	})
	release, err = c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, 0, time.Time{}, callError("create blob", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, 0, time.Time{}, callError("create blob", err)
	}
	bid, _ := res.BlobId()
	id = append([]byte(nil), bid...)
	chunkSize = int(res.ChunkSize())
	if len(id) != store.BlobIDSize || chunkSize <= 0 {
		return nil, 0, time.Time{}, fmt.Errorf("create blob: the node answered id %x, chunk size %d: %w", id, chunkSize, ErrInvalidArgument)
	}
	return id, chunkSize, time.Unix(0, res.ExpiresUnixNano()), nil
}

// PutBlobChunk stores chunk index of blob id (see CreateBlob) and reports
// whether the blob is complete.
func (c *Client) PutBlobChunk(ctx context.Context, id []byte, index uint32, data []byte) (complete bool, err error) {
	fut, release := c.putBlobChunk(ctx, id, index, data)
	release, err = c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return false, callError("put blob chunk", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return false, callError("put blob chunk", err)
	}
	return res.Complete(), nil
}

func (c *Client) putBlobChunk(ctx context.Context, id []byte, index uint32, data []byte) (blob.BlobService_putBlobChunk_Results_Future, capnp.ReleaseFunc) {
	return c.node.PutBlobChunk(ctx, func(p blob.BlobService_putBlobChunk_Params) error {
		p.SetIndex(index)
		if err := p.SetBlobId(id); err != nil {
			return err
		}
		return p.SetData(data)
	})
}

// UploadBlob stores size bytes read from r as a blob of groupID (the
// client's identity must be a member) and returns its id and expiry. It
// reads and sends one chunk at a time, a few in flight, so memory stays
// bounded whatever size is. r giving fewer bytes is an error; the
// incomplete blob expires at the node.
func (c *Client) UploadBlob(ctx context.Context, groupID []byte, size uint64, r io.Reader, progress Progress) (id []byte, expires time.Time, err error) {
	id, chunk, expires, err := c.CreateBlob(ctx, groupID, size)
	if err != nil {
		return nil, time.Time{}, err
	}
	chunks := store.BlobChunkCount(size)
	type inflight struct {
		fut     blob.BlobService_putBlobChunk_Results_Future
		release capnp.ReleaseFunc
		end     uint64
	}
	var window []inflight
	defer func() {
		for _, f := range window {
			f.release()
		}
	}()
	finish := func() error {
		f := window[0]
		window = window[1:]
		rel, err := c.wait(ctx, f.fut.Future, f.release)
		defer rel()
		if err == nil {
			_, err = f.fut.Struct()
		}
		if err != nil {
			return callError("put blob chunk", err)
		}
		if progress != nil {
			progress(f.end)
		}
		return nil
	}
	buf := make([]byte, chunk)
	var sent uint64
	for i := range chunks {
		n := min(uint64(chunk), size-sent)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, time.Time{}, fmt.Errorf("upload blob: read chunk %d: %w", i, err)
		}
		sent += n
		// capnp copies the data into the call's message: buf is free
		// again when PutBlobChunk returns.
		f, rel := c.putBlobChunk(ctx, id, i, buf[:n])
		window = append(window, inflight{fut: f, release: rel, end: sent})
		if len(window) == blobWindow {
			if err := finish(); err != nil {
				return nil, time.Time{}, err
			}
		}
	}
	for len(window) > 0 {
		if err := finish(); err != nil {
			return nil, time.Time{}, err
		}
	}
	return id, expires, nil
}

// BlobInfo reports what the node knows of blob id: only members of the
// blob's group may ask (anyone else gets ErrUnauthorized, as for an
// unknown blob).
func (c *Client) BlobInfo(ctx context.Context, id []byte) (BlobInfo, error) {
	fut, release := c.node.BlobInfo(ctx, func(p blob.BlobService_blobInfo_Params) error { return p.SetBlobId(id) })
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return BlobInfo{}, callError("blob info", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return BlobInfo{}, callError("blob info", err)
	}
	return BlobInfo{Size: res.Size(), ChunkSize: res.ChunkSize(), Complete: res.Complete(), Expires: time.Unix(0, res.ExpiresUnixNano())}, nil
}

// DownloadBlob writes blob id to w, chunk by chunk, a few in flight. want
// is the size the caller expects (from the attachment reference): a blob
// of another size is refused before a byte is read. Only members of the
// blob's group may read it (ErrUnauthorized); an upload not yet finished
// is ErrBlobIncomplete.
func (c *Client) DownloadBlob(ctx context.Context, id []byte, want uint64, w io.Writer, progress Progress) error {
	info, err := c.BlobInfo(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case info.Size != want:
		return fmt.Errorf("download blob: the node has %d bytes, the reference says %d: %w", info.Size, want, ErrInvalidArgument)
	case !info.Complete:
		return fmt.Errorf("download blob: %w", ErrBlobIncomplete)
	case info.ChunkSize == 0:
		return fmt.Errorf("download blob: chunk size 0: %w", ErrInvalidArgument)
	}
	chunks := uint32((want + uint64(info.ChunkSize) - 1) / uint64(info.ChunkSize))
	chunks = max(chunks, 1)
	type inflight struct {
		fut     blob.BlobService_getBlobChunk_Results_Future
		release capnp.ReleaseFunc
		len     uint64
	}
	var window []inflight
	defer func() {
		for _, f := range window {
			f.release()
		}
	}()
	var done uint64
	finish := func() error {
		f := window[0]
		window = window[1:]
		rel, err := c.wait(ctx, f.fut.Future, f.release)
		defer rel()
		var res blob.BlobService_getBlobChunk_Results
		if err == nil {
			res, err = f.fut.Struct()
		}
		if err != nil {
			return callError("get blob chunk", err)
		}
		data, _ := res.Data()
		if uint64(len(data)) != f.len {
			return fmt.Errorf("get blob chunk: %d bytes, want %d: %w", len(data), f.len, ErrInvalidArgument)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("download blob: %w", err)
		}
		done += f.len
		if progress != nil {
			progress(done)
		}
		return nil
	}
	var asked uint64
	for i := range chunks {
		n := min(uint64(info.ChunkSize), want-asked)
		asked += n
		f, rel := c.node.GetBlobChunk(ctx, func(p blob.BlobService_getBlobChunk_Params) error {
			p.SetIndex(i)
			return p.SetBlobId(id)
		})
		window = append(window, inflight{fut: f, release: rel, len: n})
		if len(window) == blobWindow {
			if err := finish(); err != nil {
				return err
			}
		}
	}
	for len(window) > 0 {
		if err := finish(); err != nil {
			return err
		}
	}
	return nil
}
