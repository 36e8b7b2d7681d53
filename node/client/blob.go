package client

import (
	"context"
	"errors"
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
	var sent uint64
	w := &window[blob.BlobService_putBlobChunk_Results_Future]{c: c, op: "put blob chunk",
		done: func(f blob.BlobService_putBlobChunk_Results_Future, n uint64) error {
			if _, err := f.Struct(); err != nil {
				return err
			}
			if sent += n; progress != nil {
				progress(sent)
			}
			return nil
		}}
	defer w.close()
	buf := make([]byte, chunk)
	left := size
	for i := range chunkCount(size, chunk) {
		n := min(uint64(chunk), left)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, time.Time{}, fmt.Errorf("upload blob: read chunk %d: %w", i, err)
		}
		left -= n
		// capnp copies the data into the call's message: buf is free
		// again when putBlobChunk returns.
		f, rel := c.putBlobChunk(ctx, id, i, buf[:n])
		if err := w.add(ctx, f, f.Future, rel, n); err != nil {
			return nil, time.Time{}, err
		}
	}
	if err := w.drain(ctx); err != nil {
		return nil, time.Time{}, err
	}
	return id, expires, nil
}

// chunkCount is the number of chunks of a blob of size bytes (at least one).
func chunkCount(size uint64, chunk int) uint32 {
	return uint32(max((size+uint64(chunk)-1)/uint64(chunk), 1))
}

// window keeps up to blobWindow chunk calls (futures F) in flight: add
// waits for the oldest once the window is full, and done handles each
// answer in order with the call's bytes.
type window[F any] struct {
	c     *Client
	op    string
	done  func(f F, n uint64) error
	calls []inflight[F]
}

type inflight[F any] struct {
	f       F
	fut     *capnp.Future
	release capnp.ReleaseFunc
	n       uint64
}

func (w *window[F]) add(ctx context.Context, f F, fut *capnp.Future, release capnp.ReleaseFunc, n uint64) error {
	w.calls = append(w.calls, inflight[F]{f, fut, release, n})
	if len(w.calls) < blobWindow {
		return nil
	}
	return w.finish(ctx)
}

func (w *window[F]) finish(ctx context.Context) error {
	call := w.calls[0]
	w.calls = w.calls[1:]
	rel, err := w.c.wait(ctx, call.fut, call.release)
	defer rel()
	if err == nil {
		err = w.done(call.f, call.n)
	}
	if err != nil && !errors.Is(err, ErrInvalidArgument) {
		return callError(w.op, err)
	}
	return err
}

// drain waits for every call still in flight.
func (w *window[F]) drain(ctx context.Context) error {
	for len(w.calls) > 0 {
		if err := w.finish(ctx); err != nil {
			return err
		}
	}
	return nil
}

// close releases the calls left after a failure.
func (w *window[F]) close() {
	for _, call := range w.calls {
		call.release()
	}
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
	var done uint64
	win := &window[blob.BlobService_getBlobChunk_Results_Future]{c: c, op: "get blob chunk",
		done: func(f blob.BlobService_getBlobChunk_Results_Future, n uint64) error {
			res, err := f.Struct()
			if err != nil {
				return err
			}
			data, _ := res.Data()
			if uint64(len(data)) != n {
				return fmt.Errorf("get blob chunk: %d bytes, want %d: %w", len(data), n, ErrInvalidArgument)
			}
			if _, err := w.Write(data); err != nil {
				return fmt.Errorf("download blob: %w", err)
			}
			if done += n; progress != nil {
				progress(done)
			}
			return nil
		}}
	defer win.close()
	left := want
	for i := range chunkCount(want, int(info.ChunkSize)) {
		n := min(uint64(info.ChunkSize), left)
		left -= n
		f, rel := c.node.GetBlobChunk(ctx, func(p blob.BlobService_getBlobChunk_Params) error {
			p.SetIndex(i)
			return p.SetBlobId(id)
		})
		if err := win.add(ctx, f, f.Future, rel, n); err != nil {
			return err
		}
	}
	return win.drain(ctx)
}
