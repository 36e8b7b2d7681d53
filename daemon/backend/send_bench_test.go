package backend

import (
	"context"
	"fmt"
	"testing"

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
	gid := FormatKey(g.ID)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	n := 0
	for i := 0; b.Loop(); i++ {
		if _, err := alice.b.Send(ctx, gid, fmt.Sprintf("m%d", i), nil); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	cpu = processCPU(b) - cpu
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
}
