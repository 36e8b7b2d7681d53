package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/benchfloor"
	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/postgres"
)

// The delivery benchmarks put the node's durable throughput beside the
// disk's floors, measured in the same run on the same file system
// (internal/benchfloor): raw (one 1 KiB write and fsync per message) and
// batched (one write and fsync for as many messages as there are senders,
// the best a group commit can do). floor/ours says how far from the floor
// the node is; 1 would be the disk's limit.

// deliverySenders are the concurrent senders of BenchmarkDeliveries.
var deliverySenders = []int{1, 16, 64}

// BenchmarkDeliveries: k senders, each on its own QUIC connection, enqueue
// 1 KiB messages back to back, each call returning once its message is
// durable; SQLite store.
func BenchmarkDeliveries(b *testing.B) {
	for _, k := range deliverySenders {
		b.Run(fmt.Sprintf("senders=%d", k), func(b *testing.B) { benchDeliveries(b, benchNode(b), k) })
	}
}

// BenchmarkDeliveriesPostgres is BenchmarkDeliveries on a PostgreSQL store
// (a throwaway local cluster with fsync on, internal/pgtest).
func BenchmarkDeliveriesPostgres(b *testing.B) {
	for _, k := range deliverySenders {
		b.Run(fmt.Sprintf("senders=%d", k), func(b *testing.B) {
			benchDeliveries(b, benchPostgresNode(b, pgtest.NewDatabase(b)), k)
		})
	}
}

// benchDeliveries runs b.N enqueues from k senders on n and reports the
// rate, the latency of one call (p50, p99) and the floors.
func benchDeliveries(b *testing.B, n *testNode, k int) {
	ctx := context.Background()
	clients := make([]deliverySender, k)
	for i := range clients {
		clients[i] = deliverySender{c: n.dial(b, newTestIdentity(b).priv), to: newTestIdentity(b).pub}
	}
	payload := benchPayload()
	var (
		left = atomic.Int64{}
		wg   sync.WaitGroup
		lat  = make([][]time.Duration, k)
	)
	left.Store(int64(b.N))
	fl := benchfloor.Floors{Size: benchPayloadSize, Batch: k}
	fl.Measure(b)
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i, s := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				start := time.Now()
				if _, _, err := s.c.Enqueue(ctx, s.to, payload, nil); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	rate := float64(len(all)) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	fl.Measure(b)
	fl.Report(b, rate)
}

// deliverySender is one sender's connection and its recipient.
type deliverySender struct {
	c  *client.Client
	to []byte
}

// benchPostgresNode is benchNode on the PostgreSQL database conn.
func benchPostgresNode(b *testing.B, conn string) *testNode {
	st, err := postgres.Open(context.Background(), conn, store.Limits{MaxQueueDepth: 1 << 30}, testLogger(b))
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	cfg := benchConfig()
	cfg.Store = st
	return serveNode(b, cfg, st.Close)
}
