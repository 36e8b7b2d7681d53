package backend

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"
)

// BenchmarkReceiveAlone measures the receiving transaction alone: one
// group message at a time, protected by an in-process peer (outside the
// figures) and applied as the node pushes it, one envelope, no network.
// cpu-µs/msg is the process's CPU time spent applying, per message.
//
// members=1000 is the same in a group of a thousand: what a message costs
// must not grow with the group (its secret trees are saved, not the whole
// state).
func BenchmarkReceiveAlone(b *testing.B) {
	for _, n := range []int{2, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { benchReceiveAlone(b, n) })
	}
}

func benchReceiveAlone(b *testing.B, members int) {
	r := receiveSetupMembers(b, testnode.Logger(), "alone", members-2)
	ctx := context.Background()
	if _, err := r.b.Join(ctx, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var cpu time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		p, err := r.peer.Protect(appendAppContent(time.Now(), "m"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := processCPU(b)
		if ok, err := r.apply(uint64(i+2), p, nil); err != nil || !ok {
			b.Fatalf("apply: %v %v", ok, err)
		}
		cpu += processCPU(b) - c0
		n++
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
}
