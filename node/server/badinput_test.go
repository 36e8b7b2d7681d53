package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

func TestBadInputCalls(t *testing.T) {
	n := startTestNode(t, server.Config{MaxPayloadSize: 1 << 20}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca := n.dial(t, a.priv)

	cases := []struct {
		name string
		call func() error
		want error
		text string
	}{
		{"oversized payload", func() error {
			_, _, err := ca.Enqueue(ctx, b.pub, make([]byte, 1<<20+1), nil)
			return err
		}, client.ErrTooLarge, "limit 1048576"},
		{"empty payload", func() error {
			_, _, err := ca.Enqueue(ctx, b.pub, nil, nil)
			return err
		}, client.ErrInvalidArgument, "empty payload"},
		{"short recipient key", func() error {
			_, _, err := ca.Enqueue(ctx, b.pub[:31], []byte("x"), nil)
			return err
		}, client.ErrInvalidArgument, "31 bytes"},
		{"long recipient key", func() error {
			_, _, err := ca.Enqueue(ctx, append(bytes.Clone(b.pub), 0), []byte("x"), nil)
			return err
		}, client.ErrInvalidArgument, "33 bytes"},
		{"empty key on fetchKeyPackage", func() error {
			_, err := ca.FetchKeyPackage(ctx, nil)
			return err
		}, client.ErrInvalidArgument, "0 bytes"},
		{"malformed key on receive", func() error {
			_, err := ca.Receive(ctx, []byte("short"), 0, 0)
			return err
		}, client.ErrInvalidArgument, "5 bytes"},
		{"long client message id", func() error {
			_, _, err := ca.Enqueue(ctx, b.pub, []byte("x"), make([]byte, 65))
			return err
		}, client.ErrInvalidArgument, "clientMsgId"},
		{"key package that does not parse", func() error {
			_, err := ca.UploadKeyPackage(ctx, a.pub, []byte{0, 1, 0, 1, 0xc0, 1, 2}, false)
			return err
		}, client.ErrInvalidArgument, "key package"},
		{"truncated key package", func() error {
			_, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, 1)[:60], false)
			return err
		}, client.ErrInvalidArgument, "past the end"},
		{"key package of another identity", func() error {
			_, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(b.pub, 1), false)
			return err
		}, client.ErrInvalidArgument, "credential identity"},
		{"oversized key package", func() error {
			kp := append(testKeyPackage(a.pub, 1), make([]byte, 64<<10)...)
			_, err := ca.UploadKeyPackage(ctx, a.pub, kp, false)
			return err
		}, client.ErrTooLarge, "key package"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantErr(t, tc.name, err, tc.want)
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q does not say %q", err, tc.text)
			}
			var ne *client.NodeError
			if !errors.As(err, &ne) {
				t.Fatalf("error %v is not a *client.NodeError", err)
			}
		})
	}
	// The connection that made the bad calls still works, and so does the node.
	if _, err := ca.Ping(ctx); err != nil {
		t.Fatalf("ping after bad calls: %v", err)
	}
	checkServing(t, n)
}

// rawConn opens a QUIC connection with our ALPN and one stream, bypassing
// the RPC layer.
func rawConn(t *testing.T, n *testNode) (*quic.Conn, *quic.Stream) {
	t.Helper()
	id := newTestIdentity(t)
	cert, err := transport.ClientCertificate(id.priv)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := transport.ClientTLSConfig(&cert, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	conn, err := quic.DialAddr(ctx, n.addr, conf, transport.QUICConfig())
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("raw stream: %v", err)
	}
	return conn, s
}

// waitClosed waits for the node to end a raw connection or stream.
func waitClosed(t *testing.T, conn *quic.Conn, s *quic.Stream) {
	t.Helper()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, s)
	select {
	case <-conn.Context().Done():
		return
	default:
	}
	var netErr interface{ Timeout() bool }
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("node did not close a connection that sent garbage")
	}
}

func TestBadInputGarbageStream(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})

	garbage := map[string][]byte{
		"random bytes": func() []byte { b := make([]byte, 4096); rand.Read(b); return b }(),
		// A frame header that claims 2^32-1 segments.
		"huge segment count": {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		// One segment claiming 512 MiB.
		"huge segment": {0, 0, 0, 0, 0, 0, 0, 0x04},
		// A well-framed message whose root is not an RPC message.
		"framed nonsense": {0, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8},
	}
	for name, b := range garbage {
		t.Run(name, func(t *testing.T) {
			conn, s := rawConn(t, n)
			// The node may refuse the stream before the whole write is
			// through; a write error then is the node closing it.
			s.Write(b)
			s.Close()
			waitClosed(t, conn, s)
			checkServing(t, n)
		})
	}

	t.Run("wrong ALPN", func(t *testing.T) {
		conf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h3"}, MinVersion: tls.VersionTLS13}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, n.addr, conf, nil)
		if err == nil {
			conn.CloseWithError(0, "")
			t.Fatal("node accepted a connection with another ALPN")
		}
		checkServing(t, n)
	})

	t.Run("client certificate not self-signed", func(t *testing.T) {
		// A certificate whose signature does not verify under its own key.
		id := newTestIdentity(t)
		cert, err := transport.ClientCertificate(id.priv)
		if err != nil {
			t.Fatal(err)
		}
		der := bytes.Clone(cert.Certificate[0])
		der[len(der)-1] ^= 1 // corrupt the signature
		cert.Certificate = [][]byte{der}
		cert.Leaf = nil
		conf, _ := transport.ClientTLSConfig(&cert, func([]byte) error { return nil })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, n.addr, conf, transport.QUICConfig())
		if err == nil {
			// TLS 1.3 clients finish before the server checks; the node
			// must close the connection instead of serving it.
			s, serr := conn.OpenStreamSync(ctx)
			if serr == nil {
				s.Write([]byte{0})
				waitClosed(t, conn, s)
			}
			select {
			case <-conn.Context().Done():
			case <-time.After(5 * time.Second):
				t.Fatal("node kept a connection with a bad client certificate")
			}
		}
		checkServing(t, n)
	})
}

func TestLimits(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{MaxQueueDepth: 3, MaxKeyPackages: 2})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca := n.dial(t, a.priv)
	for i := range 3 {
		if _, _, err := ca.Enqueue(ctx, b.pub, []byte{byte(i)}, nil); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	_, _, err := ca.Enqueue(ctx, b.pub, []byte("one too many"), nil)
	wantErr(t, "enqueue past queue depth", err, client.ErrLimit)

	for i := range 2 {
		if _, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, byte(i)), false); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	_, err = ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, 9), false)
	wantErr(t, "upload past the per-identity limit", err, client.ErrLimit)
	// The last-resort package does not count against the limit.
	if _, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, 10), true); err != nil {
		t.Fatalf("last-resort upload at the limit: %v", err)
	}
	checkServing(t, n)
}

func TestRateLimit(t *testing.T) {
	// A bucket of 5 that refills once in 1000 s: exactly 5 calls pass.
	n := startTestNode(t, server.Config{RateLimit: 0.001, RateBurst: 5}, store.Limits{})
	ctx := testCtx(t)
	a := newTestIdentity(t)
	// Two connections of one identity share its bucket.
	c1, c2 := n.dial(t, a.priv), n.dial(t, a.priv)
	limited := 0
	for i := range 10 {
		c := c1
		if i%2 == 1 {
			c = c2
		}
		_, err := c.Ping(ctx)
		if errors.Is(err, client.ErrRateLimited) {
			limited++
		} else if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	if limited != 5 {
		t.Fatalf("%d of 10 pings rate limited, want 5 (burst 5, no refill)", limited)
	}
	// Another identity has its own bucket.
	if _, err := n.dial(t, newTestIdentity(t).priv).Ping(ctx); err != nil {
		t.Fatalf("other identity: %v", err)
	}
}
