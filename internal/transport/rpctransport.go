package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"capnproto.org/go/capnp/v3"
	capnptransport "capnproto.org/go/capnp/v3/rpc/transport"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
)

// Per-message overheads counted on top of a message's bytes: capnp-go's
// own structures for it (the message, its segment map, an answer entry and
// its promise for a call). Measured as the node's growth per unfinished
// Bootstrap, about 2.4 KiB in all.
const (
	inOverhead  = 1 << 10
	outOverhead = 1 << 10
)

// ErrBadMessage: the peer sent a message that cannot be read; the
// connection is closed.
var ErrBadMessage = errors.New("transport: malformed rpc message")

// maxSegments is capnp's own bound on the segments of a stream message.
const maxSegments = 512

// firstChunk is how much of a frame's body is allocated before more arrives.
const firstChunk = 64 << 10

// deadliner is a stream whose reads and writes can time out (a QUIC stream).
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// RPCTransport carries Cap'n Proto RPC messages (unpacked stream framing)
// over a byte stream within Limits. It implements capnp-go's rpc.Transport.
type RPCTransport struct {
	rwc io.ReadWriteCloser
	dl  deadliner // nil: rwc has no deadlines
	lim Limits
	h   holder

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	answers map[uint32]struct{} // the peer's open questions
	imports map[uint32]int      // capabilities the peer exported to us, with their reference counts
	failed  *LimitError         // the first limit passed

	first [8]byte // the start of a frame's header (RecvMessage runs on one goroutine)

	writeMu    sync.Mutex
	pending    []byte      // frames of Finish messages waiting for the next write (coalesce.go)
	flushTimer *time.Timer // writes pending when no other message comes
	flushArmed bool
	closed     atomic.Bool
}

var _ capnptransport.Transport = (*RPCTransport)(nil)

// NewRPCTransport carries RPC messages over rwc within lim. When rwc has
// read and write deadlines (a QUIC stream), FrameTimeout and IdleTimeout
// apply; otherwise they do not.
func NewRPCTransport(rwc io.ReadWriteCloser, lim Limits) *RPCTransport {
	t := &RPCTransport{
		rwc:     rwc,
		lim:     lim,
		answers: make(map[uint32]struct{}),
		imports: make(map[uint32]int),
	}
	t.h.lim = &t.lim
	t.dl, _ = rwc.(deadliner)
	return t
}

// Err returns the limit the peer went past, or nil.
func (t *RPCTransport) Err() *LimitError {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// Held returns the bytes of messages the connection holds now, and the
// most it held at once.
func (t *RPCTransport) Held() (now, peak int64) { return t.h.counts() }

// fail records e as the reason the connection ends (the first one wins)
// and returns the recorded reason.
func (t *RPCTransport) fail(e *LimitError) *LimitError {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed == nil {
		t.failed = e
	}
	return t.failed
}

// failAndClose records e and closes the stream, which ends a read waiting
// in RecvMessage: the RPC layer then shuts the connection down.
func (t *RPCTransport) failAndClose(e *LimitError) error {
	t.fail(e)
	t.Close()
	return e
}

// Close closes the stream and returns every byte the connection still
// counts to the budget. It may be called more than once.
func (t *RPCTransport) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		t.closeErr = t.rwc.Close()
		t.h.closeAll()
	})
	return t.closeErr
}

// RecvMessage reads, checks and returns the next message.
func (t *RPCTransport) RecvMessage() (capnptransport.IncomingMessage, error) {
	if e := t.Err(); e != nil {
		return nil, e
	}
	buf, n, err := t.readFrame()
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			return nil, t.fail(le)
		}
		if e := t.Err(); e != nil {
			return nil, e // the stream was closed because of it
		}
		return nil, err
	}
	in := &inMsg{t: t, n: n}
	// capnp-go panics reading the root of a message whose first segment
	// is empty (Message.Root indexes past it): refuse such a message.
	if binary.LittleEndian.Uint32(buf[4:8]) == 0 {
		in.Release()
		return nil, fmt.Errorf("%w: empty first segment, no root", ErrBadMessage)
	}
	msg, err := capnp.Unmarshal(buf)
	if err == nil {
		in.msg, err = rpccp.ReadRootMessage(msg)
	}
	if err != nil {
		in.Release()
		return nil, err
	}
	if e := t.inspectIncoming(in.msg); e != nil {
		in.Release()
		return nil, t.fail(e)
	}
	return in, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// readFrame reads one framed message. It allocates the body as it arrives
// (never more than four times what has been received) and counts it as held;
// n is the count to return when the message is released.
func (t *RPCTransport) readFrame() (buf []byte, n int64, err error) {
	idle := t.lim.IdleTimeout > 0 && t.dl != nil && t.idle()
	if idle {
		t.dl.SetReadDeadline(time.Now().Add(t.lim.IdleTimeout))
	}
	// Every header has at least 8 bytes: the first read may take them all
	// (but reads past the first 4 only what has arrived).
	first := t.first[:]
	got, err := io.ReadAtLeast(t.rwc, first, 4)
	if err != nil {
		if idle && isTimeout(err) {
			return nil, 0, limitErr(LimitIdle, "no message for %v with no subscription open", t.lim.IdleTimeout)
		}
		return nil, 0, err
	}
	timed := t.lim.FrameTimeout > 0 && t.dl != nil
	switch {
	case timed:
		t.dl.SetReadDeadline(time.Now().Add(t.lim.FrameTimeout))
		defer t.dl.SetReadDeadline(time.Time{})
	case idle:
		t.dl.SetReadDeadline(time.Time{})
	}
	defer func() {
		if err != nil {
			t.h.release(n)
			buf, n = nil, 0
			if timed && isTimeout(err) {
				err = limitErr(LimitFrameTimeout, "a message was not complete %v after its header", t.lim.FrameTimeout)
			}
		}
	}()

	nseg := uint64(binary.LittleEndian.Uint32(first[:])) + 1
	if nseg > maxSegments {
		return nil, 0, limitErr(LimitFrameSize, "message announces %d segments, limit %d", nseg, maxSegments)
	}
	hdrSize := (4 + 4*nseg + 7) &^ 7
	if e := t.h.reserve(int64(hdrSize) + inOverhead); e != nil {
		return nil, 0, e
	}
	n = int64(hdrSize) + inOverhead
	hdr := first
	if hdrSize > uint64(len(first)) {
		hdr = make([]byte, hdrSize)
		copy(hdr, first[:got])
	}
	if _, err := io.ReadFull(t.rwc, hdr[got:]); err != nil {
		return nil, n, err
	}
	total := hdrSize
	for i := uint64(0); i < nseg; i++ {
		total += 8 * uint64(binary.LittleEndian.Uint32(hdr[4+4*i:]))
	}
	if t.lim.MaxFrame > 0 && total > t.lim.MaxFrame {
		return nil, n, limitErr(LimitFrameSize, "message of %d bytes announced, limit %d", total, t.lim.MaxFrame)
	}
	if total > 1<<40 {
		return nil, n, limitErr(LimitFrameSize, "message of %d bytes announced", total)
	}

	// The body, grown as it arrives.
	size := min(total, uint64(hdrSize)+firstChunk)
	if e := t.h.reserve(int64(size)); e != nil {
		return nil, n, e
	}
	n += int64(size)
	buf = make([]byte, hdrSize, size)
	copy(buf, hdr)
	t.h.release(int64(hdrSize))
	n -= int64(hdrSize)
	for uint64(len(buf)) < total {
		if len(buf) == cap(buf) {
			grown := min(total, 4*uint64(cap(buf)))
			if e := t.h.reserve(int64(grown)); e != nil {
				return nil, n, e
			}
			n += int64(grown)
			nb := make([]byte, len(buf), grown)
			copy(nb, buf)
			t.h.release(int64(cap(buf)))
			n -= int64(cap(buf))
			buf = nb
		}
		m, err := t.rwc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && uint64(len(buf)) < total {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, n, err
		}
	}
	return buf, n, nil
}

// idle reports whether the connection holds nothing the peer may be
// waiting on: no capability of the peer's (a subscription's sink).
func (t *RPCTransport) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.imports) == 0
}

// inspectIncoming tracks the questions the peer opens and finishes and the
// capabilities it sends, before the RPC layer acts on the message.
func (t *RPCTransport) inspectIncoming(m rpccp.Message) *LimitError {
	switch m.Which() {
	case rpccp.Message_Which_bootstrap:
		b, err := m.Bootstrap()
		if err != nil {
			return nil // the RPC layer reports it
		}
		return t.openAnswer(b.QuestionId())
	case rpccp.Message_Which_call:
		c, err := m.Call()
		if err != nil {
			return nil
		}
		if e := t.openAnswer(c.QuestionId()); e != nil {
			return e
		}
		if p, err := c.Params(); err == nil {
			return t.importCaps(p)
		}
	case rpccp.Message_Which_return:
		r, err := m.Return()
		if err != nil || r.Which() != rpccp.Return_Which_results {
			return nil
		}
		if p, err := r.Results(); err == nil {
			return t.importCaps(p)
		}
	case rpccp.Message_Which_finish:
		if f, err := m.Finish(); err == nil {
			t.mu.Lock()
			delete(t.answers, f.QuestionId())
			t.mu.Unlock()
		}
	}
	return nil
}

func (t *RPCTransport) openAnswer(id uint32) *LimitError {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.answers[id] = struct{}{}
	if max := t.lim.MaxAnswers; max > 0 && len(t.answers) > max {
		return limitErr(LimitAnswers, "%d calls not finished, limit %d", len(t.answers), max)
	}
	return nil
}

// importCaps counts the capabilities of a payload's cap table that the
// peer hosts: each becomes an import the RPC layer keeps until it sends a
// Release.
func (t *RPCTransport) importCaps(p rpccp.Payload) *LimitError {
	if !p.HasCapTable() {
		return nil
	}
	caps, err := p.CapTable()
	if err != nil {
		return nil
	}
	if max := t.lim.MaxCapsPerMessage; max > 0 && caps.Len() > max {
		return limitErr(LimitCapTable, "a message carries %d capabilities, limit %d", caps.Len(), max)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < caps.Len(); i++ {
		d := caps.At(i)
		switch d.Which() {
		case rpccp.CapDescriptor_Which_senderHosted:
			t.imports[d.SenderHosted()]++
		case rpccp.CapDescriptor_Which_senderPromise:
			t.imports[d.SenderPromise()]++
		}
	}
	if max := t.lim.MaxImports; max > 0 && len(t.imports) > max {
		return limitErr(LimitImports, "%d capabilities of the peer held, limit %d", len(t.imports), max)
	}
	return nil
}

// released uncounts the imports an outgoing Release message gives up.
func (t *RPCTransport) released(m rpccp.Message) {
	if m.Which() != rpccp.Message_Which_release {
		return
	}
	r, err := m.Release()
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	id := r.Id()
	if t.imports[id] -= int(r.ReferenceCount()); t.imports[id] <= 0 {
		delete(t.imports, id)
	}
}

// inMsg is a received message; its bytes count as held until Release.
type inMsg struct {
	t    *RPCTransport
	msg  rpccp.Message
	n    int64
	once sync.Once
}

func (m *inMsg) Message() rpccp.Message { return m.msg }

func (m *inMsg) Release() {
	m.once.Do(func() {
		if mm := m.msg.Message(); mm != nil {
			mm.Release()
		}
		m.t.h.release(m.n)
	})
}

// NewMessage starts an outgoing message in an arena whose allocations
// count as held until the message is released.
func (t *RPCTransport) NewMessage() (capnptransport.OutgoingMessage, error) {
	t.h.force(outOverhead)
	a := &countingArena{Arena: capnp.MultiSegment(nil), t: t, n: outOverhead}
	msg, seg, err := capnp.NewMessage(a)
	if err != nil {
		a.Release()
		return nil, err
	}
	rm, err := rpccp.NewRootMessage(seg)
	if err != nil {
		msg.Release()
		return nil, err
	}
	return &outMsg{t: t, msg: rm}, nil
}

// countingArena is capnp's multi-segment arena with its segments counted
// against the connection's limits: an allocation past them fails, and the
// connection is closed.
type countingArena struct {
	capnp.Arena
	t        *RPCTransport
	n        int64
	released bool
}

func (a *countingArena) Allocate(sz capnp.Size, segs map[capnp.SegmentID]*capnp.Segment) (capnp.SegmentID, []byte, error) {
	if e := a.t.h.reserve(int64(sz)); e != nil {
		// Past the limits; the small messages that end the
		// connection (an Abort) still go out.
		if a.t.Err() == nil || sz > 4<<10 {
			return 0, nil, a.t.failAndClose(e)
		}
		a.t.h.force(int64(sz))
	}
	before := a.Arena.NumSegments()
	id, buf, err := a.Arena.Allocate(sz, segs)
	a.t.h.release(int64(sz))
	if err == nil && int64(id) >= before {
		a.t.h.force(int64(cap(buf)))
		a.n += int64(cap(buf))
	}
	return id, buf, err
}

func (a *countingArena) Release() {
	if a.released {
		return
	}
	a.released = true
	a.Arena.Release()
	a.t.h.release(a.n)
	a.n = 0
}

// outMsg is a message being built or sent.
type outMsg struct {
	t        *RPCTransport
	msg      rpccp.Message
	mu       sync.Mutex
	released bool
}

func (m *outMsg) Message() rpccp.Message { return m.msg }

func (m *outMsg) Release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.released {
		m.released = true
		m.msg.Message().Release()
	}
}

// Send writes the message within FrameTimeout. A small message is
// written with one Write (so that the frame header and the segments leave
// in the same QUIC packet); a large one segment by segment, without a copy.
func (m *outMsg) Send() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.released {
		panic("transport: Send after Release")
	}
	t := m.t
	t.released(m.msg)
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	// A small message is framed after any waiting Finish frames, in the
	// same buffer.
	one, parts, size, err := frame(m.msg.Message(), t.pending)
	if err != nil {
		return err
	}
	if one != nil {
		if m.msg.Which() == rpccp.Message_Which_finish && len(one) <= maxPending {
			t.holdFinish(one, size)
			return nil
		}
		t.takePending()
		return t.writeLocked(size, one)
	}
	if p := t.takePending(); p != nil {
		if err := t.writeLocked(len(p), p); err != nil {
			return err
		}
	}
	return t.writeLocked(size, parts...)
}

// writeLocked writes bufs within FrameTimeout; t.writeMu is held. size is
// the message's, for the error.
func (t *RPCTransport) writeLocked(size int, bufs ...[]byte) error {
	timed := t.lim.FrameTimeout > 0 && t.dl != nil
	if timed {
		// Every write is made here, so the deadline need not be cleared.
		t.dl.SetWriteDeadline(time.Now().Add(t.lim.FrameTimeout))
	}
	for _, b := range bufs {
		if _, err := t.rwc.Write(b); err != nil {
			if timed && isTimeout(err) {
				return t.failAndClose(limitErr(LimitWriteTimeout, "the peer did not take a message of %d bytes within %v", size, t.lim.FrameTimeout))
			}
			return err
		}
	}
	return nil
}

// oneWrite is the size up to which a message is copied into one buffer.
const oneWrite = 64 << 10

// frame returns msg in stream framing: a small message copied into one
// buffer after prefix (one, which may reuse prefix's array), a large one as
// its header and its segments as they are (parts); size is the frame's
// length.
func frame(msg *capnp.Message, prefix []byte) (one []byte, parts [][]byte, size int, err error) {
	n := int(msg.NumSegments())
	if n == 0 || n > maxSegments {
		return nil, nil, 0, errors.New("transport: message has no segments or too many")
	}
	hdrLen := (4 + 4*n + 7) &^ 7
	size = hdrLen
	for i := range n {
		seg, err := msg.Segment(capnp.SegmentID(i))
		if err != nil {
			return nil, nil, 0, err
		}
		size += len(seg.Data())
	}
	var hdr []byte
	if size <= oneWrite {
		one = slices.Grow(prefix, size)[:len(prefix)+hdrLen]
		hdr = one[len(prefix):]
		clear(hdr)
	} else {
		hdr = make([]byte, hdrLen)
		parts = append(make([][]byte, 0, n+1), hdr)
	}
	binary.LittleEndian.PutUint32(hdr, uint32(n-1))
	for i := range n {
		seg, _ := msg.Segment(capnp.SegmentID(i))
		data := seg.Data()
		binary.LittleEndian.PutUint32(hdr[4+4*i:], uint32(len(data)/8))
		if one != nil {
			one = append(one, data...)
		} else {
			parts = append(parts, data)
		}
	}
	return one, parts, size, nil
}
