package server_test

import (
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// The benchmarks use 1 KiB payloads. The bare quic-go echo benchmarks carry
// the same payloads over the same TLS and QUIC configuration without RPC or
// storage, so that the node's overhead reads as a ratio.

const benchPayloadSize = 1024

func benchPayload() []byte {
	b := make([]byte, benchPayloadSize)
	rand.Read(b)
	return b
}

func benchNode(b *testing.B) *testNode {
	return startTestNode(b, benchConfig(), store.Limits{MaxQueueDepth: 1 << 30})
}

// benchConfig is the benchmarks' node configuration: no rate limit, and
// room for the group benchmarks' 1000 members connecting from loopback.
func benchConfig() server.Config {
	return server.Config{RateLimit: rate.Inf, RateBurst: 1, MaxConnsPerIP: 100000, MaxConns: 100000}
}

// BenchmarkEnqueueReceive: one sender enqueues b.N messages one after
// another (each acknowledged after it is durable), then the recipient
// receives and acks them in batches of 256.
func BenchmarkEnqueueReceive(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	a, r := newTestIdentity(b), newTestIdentity(b)
	ca, cr := n.dial(b, a.priv), n.dial(b, r.priv)
	payload := benchPayload()
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := ca.Enqueue(ctx, r.pub, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
	cursor, got := uint64(0), 0
	for got < b.N {
		msgs, err := cr.Receive(ctx, r.pub, cursor, 256)
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) == 0 {
			b.Fatalf("received %d of %d", got, b.N)
		}
		got += len(msgs)
		cursor = msgs[len(msgs)-1].Seq
		if _, err := cr.Ack(ctx, r.pub, cursor); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEnqueueParallel: several senders, each on its own connection,
// enqueue to one recipient at once.
func BenchmarkEnqueueParallel(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	r := newTestIdentity(b)
	payload := benchPayload()
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := n.dial(b, newTestIdentity(b).priv)
		for pb.Next() {
			if _, _, err := c.Enqueue(ctx, r.pub, payload, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPushLatency: the time from the start of an enqueue to the
// subscriber's deliver callback, one message at a time.
func BenchmarkPushLatency(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	a, r := newTestIdentity(b), newTestIdentity(b)
	ca, cr := n.dial(b, a.priv), n.dial(b, r.priv)
	arrived := make(chan time.Time, 1024)
	_, err := cr.Subscribe(ctx, r.pub, 0, func(_ context.Context, batch []client.Envelope) error {
		now := time.Now()
		for range batch {
			arrived <- now
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	payload := benchPayload()
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		if _, _, err := ca.Enqueue(ctx, r.pub, payload, nil); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-arrived:
			total += at.Sub(start)
		case <-time.After(10 * time.Second):
			b.Fatal("no push")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/push")
}

// echoServer serves a bare QUIC stream that echoes what it reads.
func echoServer(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	cert, _, err := transport.LoadOrCreateServerCert(dir+"/c.der", dir+"/k.der")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", transport.ServerTLSConfig(cert), transport.QUICConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				s, err := conn.AcceptStream(context.Background())
				if err != nil {
					return
				}
				io.Copy(s, s)
				s.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func echoStream(b *testing.B, addr string) *quic.Stream {
	b.Helper()
	id := newTestIdentity(b)
	cert, err := transport.ClientCertificate(id.priv)
	if err != nil {
		b.Fatal(err)
	}
	conf, _ := transport.ClientTLSConfig(&cert, func([]byte) error { return nil })
	conn, err := quic.DialAddr(context.Background(), addr, conf, transport.QUICConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.CloseWithError(0, "") })
	s, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkQUICEchoRoundTrip: write 1 KiB on a bare stream and read it back;
// the floor under one enqueue or one push.
func BenchmarkQUICEchoRoundTrip(b *testing.B) {
	s := echoStream(b, echoServer(b))
	payload := benchPayload()
	buf := make([]byte, benchPayloadSize)
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Write(payload); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkQUICEchoStreaming: write b.N payloads while reading the echo
// concurrently; the floor under pipelined throughput.
func BenchmarkQUICEchoStreaming(b *testing.B) {
	s := echoStream(b, echoServer(b))
	payload := benchPayload()
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, s, int64(b.N)*benchPayloadSize)
		done <- err
	}()
	for range b.N {
		if _, err := s.Write(payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPing: one RPC round trip with no storage, to separate the RPC
// layer's cost from the store's.
func BenchmarkPing(b *testing.B) {
	n := benchNode(b)
	c := n.dial(b, newTestIdentity(b).priv)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreEnqueue: the SQLite store's durable enqueue alone, called
// in process, for the same payloads.
func BenchmarkStoreEnqueue(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	a, r := newTestIdentity(b), newTestIdentity(b)
	payload := benchPayload()
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := n.store.Enqueue(ctx, r.pub, a.pub, nil, payload); err != nil {
			b.Fatal(err)
		}
	}
}
