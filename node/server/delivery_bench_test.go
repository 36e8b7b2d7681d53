package server_test

import (
	"context"
	"fmt"
	"testing"

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
		b.Run(fmt.Sprintf("senders=%d", k), func(b *testing.B) {
			n := benchNode(b)
			before := n.store.Commits()
			benchDeliveries(b, n, k)
			if c := n.store.Commits() - before; c > 0 {
				b.ReportMetric(float64(b.N)/float64(c), "calls/commit")
			}
		})
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
	fl := benchfloor.Floors{Size: benchPayloadSize, Batch: k}
	fl.Measure(b)
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	cpu := processCPU()
	rate := benchfloor.Concurrent(b, k, "deliveries/s", func(i int, _ int64) error {
		_, _, err := clients[i].c.Enqueue(ctx, clients[i].to, payload, nil)
		return err
	})
	reportCPU(b, processCPU()-cpu, b.N, "cpu-µs/delivery")
	fl.Measure(b)
	fl.Report(b, rate)
	reportTransportFloors(b, k, b.N, rate, func(i int) error {
		_, err := clients[i].c.Ping(ctx)
		return err
	})
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
