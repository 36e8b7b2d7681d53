package backend

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"
)

// BenchmarkSendAlone measures the send transaction alone: Send to a group
// of one member, which queues nothing for the node (its outbox item is
// sent at once), so no network and no other daemon share the figures.
// cpu-µs/msg is the process's CPU time per send.
func BenchmarkSendAlone(b *testing.B) {
	node := testnode.StartNode(b, b.TempDir(), "127.0.0.1:0")
	alice := groupsBenchStart(b, node)
	ctx := context.Background()
	g, err := alice.b.CreateGroup(ctx, "alone")
	if err != nil {
		b.Fatal(err)
	}
	benchSends(b, alice.b, FormatKey(g.ID))
}

// benchSends sends to gid until b is done and reports the process's CPU
// time per send.
func benchSends(b *testing.B, be *Backend, gid string) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	n := 0
	for i := 0; b.Loop(); i++ {
		if _, err := be.Send(ctx, gid, fmt.Sprintf("m%d", i), nil); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	cpu = processCPU(b) - cpu
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
}

// BenchmarkSendInGroup measures the send transaction in a group of
// members (the others in-process and silent, no node: the items stay
// queued): what a message costs must not grow with the group.
func BenchmarkSendInGroup(b *testing.B) {
	for _, n := range []int{2, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			r := receiveSetupMembers(b, testnode.Logger(), "send", n-2)
			if _, err := r.b.Join(context.Background(), 0); err != nil {
				b.Fatal(err)
			}
			benchSends(b, r.b, FormatKey(r.group))
		})
	}
}

// BenchmarkSendConcurrent is sixteen API callers sending at once to a
// group of one with no node: the rate of the send transactions alone
// (they share commits), for reading BenchmarkGroupThroughput's rate
// against.
func BenchmarkSendConcurrent(b *testing.B) {
	r := receiveSetupMembers(b, testnode.Logger(), "send", 0)
	if _, err := r.b.Join(context.Background(), 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu := processCPU(b)
	if err := sendConcurrently(b, r.b, FormatKey(r.group), 16); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/msg")
}
