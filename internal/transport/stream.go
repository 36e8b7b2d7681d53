package transport

import (
	"context"
	"io"
	"time"

	"capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
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

func (r streamRWC) Read(p []byte) (int, error)         { return r.s.Read(p) }
func (r streamRWC) Write(p []byte) (int, error)        { return r.s.Write(p) }
func (r streamRWC) SetReadDeadline(t time.Time) error  { return r.s.SetReadDeadline(t) }
func (r streamRWC) SetWriteDeadline(t time.Time) error { return r.s.SetWriteDeadline(t) }
func (r streamRWC) Close() error {
	r.s.CancelRead(0)
	return r.s.Close()
}

// StreamRWC wraps a QUIC stream as an io.ReadWriteCloser.
func StreamRWC(s *quic.Stream) io.ReadWriteCloser { return streamRWC{s} }

// NewRPCConn starts a Cap'n Proto RPC connection on stream within lim.
// bootstrap is the capability offered to the peer (a zero Client offers
// none); NewRPCConn takes ownership of it. The transport reports which
// limit, if any, ended the connection.
func NewRPCConn(stream *quic.Stream, lim Limits, bootstrap capnp.Client, reporter rpc.ErrorReporter) (*rpc.Conn, *RPCTransport) {
	t := NewRPCTransport(StreamRWC(stream), lim)
	return rpc.NewConn(t, &rpc.Options{
		BootstrapClient: bootstrap,
		ErrorReporter:   reporter,
	}), t
}

// WaitRPC blocks until conn ends or ctx is done.
func WaitRPC(ctx context.Context, conn *rpc.Conn) {
	select {
	case <-conn.Done():
	case <-ctx.Done():
	}
}
