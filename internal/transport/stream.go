package transport

import (
	"context"
	"io"
	"time"

	"capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	capnptransport "capnproto.org/go/capnp/v3/rpc/transport"
	"github.com/quic-go/quic-go"
)

// QUICConfig is the QUIC configuration of both ends: keep-alives so that an
// idle subscription stays open, and an idle timeout that notices a dead peer.
func QUICConfig() *quic.Config {
	return &quic.Config{
		// A peer that vanished without closing (a killed node) is noticed
		// after MaxIdleTimeout; keep-alives every 5s keep live idle
		// connections open well inside it.
		MaxIdleTimeout:        15 * time.Second,
		KeepAlivePeriod:       5 * time.Second,
		HandshakeIdleTimeout:  10 * time.Second,
		MaxIncomingStreams:    1,
		MaxIncomingUniStreams: -1,
	}
}

// streamRWC makes a QUIC stream an io.ReadWriteCloser whose Close interrupts
// pending reads as well as writes, as the capnp stream transport requires.
type streamRWC struct{ s *quic.Stream }

func (r streamRWC) Read(p []byte) (int, error)  { return r.s.Read(p) }
func (r streamRWC) Write(p []byte) (int, error) { return r.s.Write(p) }
func (r streamRWC) Close() error {
	r.s.CancelRead(0)
	return r.s.Close()
}

// StreamRWC wraps a QUIC stream as an io.ReadWriteCloser.
func StreamRWC(s *quic.Stream) io.ReadWriteCloser { return streamRWC{s} }

// codec is the capnp stream codec with a bound on the size of one message.
// It writes each message with a single Write, so that the frame header and
// the segments leave in the same QUIC packet.
type codec struct {
	*capnp.Decoder
	w io.Writer
	io.Closer
}

func (c codec) Encode(m *capnp.Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = c.w.Write(b)
	return err
}

// NewRPCTransport carries Cap'n Proto messages (unpacked framing) over rwc,
// refusing incoming messages larger than maxMessage bytes (0: capnp's default).
func NewRPCTransport(rwc io.ReadWriteCloser, maxMessage uint64) capnptransport.Transport {
	dec := capnp.NewDecoder(rwc)
	dec.MaxMessageSize = maxMessage
	return capnptransport.New(codec{Decoder: dec, w: rwc, Closer: rwc})
}

// NewRPCConn starts a Cap'n Proto RPC connection on stream. bootstrap is the
// capability offered to the peer (a zero Client offers none); NewRPCConn
// takes ownership of it.
func NewRPCConn(stream *quic.Stream, maxMessage uint64, bootstrap capnp.Client, reporter rpc.ErrorReporter) *rpc.Conn {
	return rpc.NewConn(NewRPCTransport(StreamRWC(stream), maxMessage), &rpc.Options{
		BootstrapClient: bootstrap,
		ErrorReporter:   reporter,
	})
}

// WaitRPC blocks until conn ends or ctx is done.
func WaitRPC(ctx context.Context, conn *rpc.Conn) {
	select {
	case <-conn.Done():
	case <-ctx.Done():
	}
}
