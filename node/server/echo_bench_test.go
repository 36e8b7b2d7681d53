package server_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/quicproquo/quicproquo/internal/benchfloor"
)

// The transport's floors beside the node's deliveries: k connections, each
// one 1 KiB request and its answer at a time, over bare quic-go (echo) and
// through our Cap'n Proto RPC with no storage (ping). Their rates say how
// much of a delivery rate the transport alone allows on this machine.

// BenchmarkQUICEchoConcurrent: k bare QUIC connections, each writing 1 KiB
// and reading it back, one at a time.
func BenchmarkQUICEchoConcurrent(b *testing.B) {
	for _, k := range deliverySenders {
		b.Run(fmt.Sprintf("conns=%d", k), func(b *testing.B) {
			streams := echoStreams(b, k)
			payload := benchPayload()
			bufs := make([][]byte, k)
			for i := range bufs {
				bufs[i] = make([]byte, benchPayloadSize)
			}
			b.SetBytes(benchPayloadSize)
			b.ReportAllocs()
			cpu := processCPU()
			benchfloor.Concurrent(b, k, "msgs/s", func(i int, _ int64) error {
				return echoOnce(streams[i], payload, bufs[i])
			})
			reportCPU(b, processCPU()-cpu, b.N, "cpu-µs/msg")
		})
	}
}

// BenchmarkPingConcurrent: k connections to a node, each calling Ping (RPC
// only, no storage) one at a time.
func BenchmarkPingConcurrent(b *testing.B) {
	for _, k := range deliverySenders {
		b.Run(fmt.Sprintf("conns=%d", k), func(b *testing.B) {
			n := benchNode(b)
			ctx := context.Background()
			clients := make([]deliverySender, k)
			for i := range clients {
				clients[i] = deliverySender{c: n.dial(b, newTestIdentity(b).priv)}
			}
			b.ReportAllocs()
			cpu := processCPU()
			benchfloor.Concurrent(b, k, "pings/s", func(i int, _ int64) error {
				_, err := clients[i].c.Ping(ctx)
				return err
			})
			reportCPU(b, processCPU()-cpu, b.N, "cpu-µs/ping")
		})
	}
}

// echoStreams opens k bare QUIC connections to one echo server, a stream
// on each.
func echoStreams(b *testing.B, k int) []*quic.Stream {
	addr := echoServer(b)
	s := make([]*quic.Stream, k)
	for i := range s {
		s[i] = echoStream(b, addr)
	}
	return s
}

// echoOnce writes payload on s and reads its echo into buf.
func echoOnce(s *quic.Stream, payload, buf []byte) error {
	if _, err := s.Write(payload); err != nil {
		return err
	}
	_, err := io.ReadFull(s, buf)
	return err
}

// transportFloor is the rate of n calls made by k goroutines at once
// (goroutine i calls call(i)), and the process CPU time per call.
func transportFloor(k, n int, call func(i int) error) (rate float64, cpu time.Duration, err error) {
	var (
		left    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
	)
	left.Store(int64(n))
	c0, start := processCPU(), time.Now()
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if e := call(i); e != nil {
					errOnce.Do(func() { err = e })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed, used := time.Since(start), processCPU()-c0
	return float64(n) / elapsed.Seconds(), used / time.Duration(n), err
}

// reportTransportFloors measures, with the timer stopped, the bare QUIC
// echo and the RPC ping of k connections at once for n calls each, and
// reports their rates beside rate (the node's deliveries/s of the same
// run): echo-floor/s and echo/ours, ping-floor/s and ping/ours, with the
// CPU time of one echo and one ping.
func reportTransportFloors(b *testing.B, k, n int, rate float64, ping func(i int) error) {
	b.Helper()
	streams := echoStreams(b, k)
	payload := benchPayload()
	bufs := make([][]byte, k)
	for i := range bufs {
		bufs[i] = make([]byte, benchPayloadSize)
	}
	echo, echoCPU, err := transportFloor(k, n, func(i int) error { return echoOnce(streams[i], payload, bufs[i]) })
	if err != nil {
		b.Fatalf("echo floor: %v", err)
	}
	pings, pingCPU, err := transportFloor(k, n, ping)
	if err != nil {
		b.Fatalf("ping floor: %v", err)
	}
	b.ReportMetric(echo, "echo-floor/s")
	b.ReportMetric(float64(echoCPU.Nanoseconds())/1000, "echo-cpu-µs")
	b.ReportMetric(pings, "ping-floor/s")
	b.ReportMetric(float64(pingCPU.Nanoseconds())/1000, "ping-cpu-µs")
	if rate > 0 {
		b.ReportMetric(echo/rate, "echo/ours")
		b.ReportMetric(pings/rate, "ping/ours")
	}
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time d over n operations in µs as unit.
func reportCPU(b *testing.B, d time.Duration, n int, unit string) {
	if n > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/1000/float64(n), unit)
	}
}
