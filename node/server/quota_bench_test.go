package server_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// limitsBenchNodes starts two nodes that differ only in the limits of
// registration, quotas and the disk budget: none (no registration, no
// quotas, no budget) and the defaults qpnode runs with.
func limitsBenchNodes(b *testing.B) (none, limited *testNode) {
	base := server.Config{RateLimit: rate.Inf, RateBurst: 1, MaxConnsPerIP: 100000}
	off := base
	off.DiskBudget = -1
	none = startTestNode(b, off, store.Limits{MaxQueueDepth: 1 << 30})
	on := base
	on.Registration, on.PowDifficulty = server.RegistrationOpen, 4
	limited = startTestNode(b, on, store.Limits{MaxQueueDepth: 1 << 30, GroupReserve: store.DefaultGroupReserve,
		MaxStrangerMessages: store.DefaultMaxStrangerMessages, MaxStrangerBytes: store.DefaultMaxStrangerBytes})
	return none, limited
}

// limitsBenchPair connects a sender and a recipient (a new one when
// recipient is nil) that share a group (the common case: direct messages
// between members), both registered.
func limitsBenchPair(b *testing.B, n *testNode, recipient []byte) (*client.Client, []byte) {
	ctx := context.Background()
	a := newTestIdentity(b)
	ca := n.dial(b, a.priv)
	if err := ca.Register(ctx, ""); err != nil {
		b.Fatal(err)
	}
	if recipient == nil {
		r := newTestIdentity(b)
		if err := n.dial(b, r.priv).Register(ctx, ""); err != nil {
			b.Fatal(err)
		}
		recipient = r.pub
	}
	gid := append([]byte("bench group "), a.pub[:4]...)
	if _, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: grpPublic(gid, 0, grpContentCommit, "c"), Recipients: [][]byte{recipient}}); err != nil {
		b.Fatal(err)
	}
	return ca, recipient
}

// BenchmarkEnqueueLimits measures what registration, the queue quotas and
// the disk budget cost an enqueue: each iteration enqueues one 1 KiB
// message to a node without them and one to a node with qpnode's
// defaults, alternating which goes first, and reports both times and
// their ratio from the same run.
func BenchmarkEnqueueLimits(b *testing.B) {
	none, limited := limitsBenchNodes(b)
	sn, rn := limitsBenchPair(b, none, nil)
	sl, rl := limitsBenchPair(b, limited, nil)
	ctx := context.Background()
	payload := benchPayload()
	var tNone, tLimited time.Duration
	enqueue := func(c *client.Client, r []byte, total *time.Duration) {
		start := time.Now()
		if _, _, err := c.Enqueue(ctx, r, payload, nil); err != nil {
			b.Fatal(err)
		}
		*total += time.Since(start)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			enqueue(sn, rn, &tNone)
			enqueue(sl, rl, &tLimited)
		} else {
			enqueue(sl, rl, &tLimited)
			enqueue(sn, rn, &tNone)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(tNone.Nanoseconds())/float64(b.N), "none-ns/op")
	b.ReportMetric(float64(tLimited.Nanoseconds())/float64(b.N), "limits-ns/op")
	b.ReportMetric(float64(tLimited)/float64(tNone), "limits/none")
}

// BenchmarkEnqueueParallelLimits is BenchmarkEnqueueLimits with four
// senders per node at once (where the store commits enqueues in groups):
// each worker alternates between the two nodes.
func BenchmarkEnqueueParallelLimits(b *testing.B) {
	none, limited := limitsBenchNodes(b)
	_, rn := limitsBenchPair(b, none, nil)
	_, rl := limitsBenchPair(b, limited, nil)
	ctx := context.Background()
	payload := benchPayload()
	var tNone, tLimited atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		b.StopTimer()
		sn, _ := limitsBenchPair(b, none, rn)
		sl, _ := limitsBenchPair(b, limited, rl)
		b.StartTimer()
		for i := 0; pb.Next(); i++ {
			for k := range 2 {
				c, r, total := sn, rn, &tNone
				if (i+k)%2 == 1 {
					c, r, total = sl, rl, &tLimited
				}
				start := time.Now()
				if _, _, err := c.Enqueue(ctx, r, payload, nil); err != nil {
					b.Error(err)
					return
				}
				total.Add(int64(time.Since(start)))
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(tNone.Load())/float64(b.N), "none-ns/op")
	b.ReportMetric(float64(tLimited.Load())/float64(b.N), "limits-ns/op")
	b.ReportMetric(float64(tLimited.Load())/float64(tNone.Load()), "limits/none")
}
