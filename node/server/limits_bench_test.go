package server_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// BenchmarkLimitsCost measures what the connection and RPC limits cost: two
// nodes in one process, one with the default limits and one with none
// (a zero transport.Limits), serve the same calls alternately, so that both
// see the same machine load. It reports each side's time per call and
// their ratio (limited / unlimited).
func BenchmarkLimitsCost(b *testing.B) {
	unlimited := &transport.Limits{}
	for _, bc := range []struct {
		name string
		call func(ctx context.Context, c *client.Client, to []byte, payload []byte) error
	}{
		{"enqueue", func(ctx context.Context, c *client.Client, to, payload []byte) error {
			_, _, err := c.Enqueue(ctx, to, payload, nil)
			return err
		}},
		{"ping", func(ctx context.Context, c *client.Client, _, _ []byte) error {
			_, err := c.Ping(ctx)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := server.Config{RateLimit: rate.Inf, RateBurst: 1}
			on := startTestNode(b, cfg, store.Limits{MaxQueueDepth: 1 << 30})
			cfg.RPC = unlimited
			off := startTestNode(b, cfg, store.Limits{MaxQueueDepth: 1 << 30})
			ctx := context.Background()
			a, r := newTestIdentity(b), newTestIdentity(b)
			con, coff := on.dial(b, a.priv), off.dial(b, a.priv)
			payload := benchPayload()
			var tOn, tOff time.Duration
			b.SetBytes(benchPayloadSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				// Alternate which goes first, so neither gains from warm caches.
				first, second, tFirst, tSecond := con, coff, &tOn, &tOff
				if i%2 == 1 {
					first, second, tFirst, tSecond = coff, con, &tOff, &tOn
				}
				start := time.Now()
				if err := bc.call(ctx, first, r.pub, payload); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := bc.call(ctx, second, r.pub, payload); err != nil {
					b.Fatal(err)
				}
				*tFirst += mid.Sub(start)
				*tSecond += time.Since(mid)
			}
			b.StopTimer()
			b.ReportMetric(float64(tOn.Nanoseconds())/float64(b.N), "ns/limited")
			b.ReportMetric(float64(tOff.Nanoseconds())/float64(b.N), "ns/unlimited")
			b.ReportMetric(float64(tOn)/float64(tOff), "ratio")
		})
	}
}
