package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/internal/benchfloor"
	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// BenchmarkEnqueueSenders is the store alone under k concurrent callers of
// a durable 1 KiB direct Enqueue, with a client message id and without,
// against the throwaway cluster of the tests (fsync on); beside it the raw
// and batched write+fsync floors of the same disk in the same run.
func BenchmarkEnqueueSenders(b *testing.B) {
	for _, k := range []int{1, 64} {
		for _, withID := range []bool{true, false} {
			b.Run(fmt.Sprintf("senders=%d/id=%v", k, withID), func(b *testing.B) {
				s := benchStore(b)
				ctx := context.Background()
				payload := make([]byte, 1024)
				fl := benchfloor.Floors{Size: len(payload), Batch: k}
				fl.Measure(b)
				keys := make([][2][]byte, k)
				for i := range keys {
					keys[i] = [2][]byte{storetest.Key(fmt.Sprint("r", i)), storetest.Key(fmt.Sprint("s", i))}
				}
				b.ReportAllocs()
				rate := benchfloor.Concurrent(b, k, "deliveries/s", func(i int, n int64) error {
					var id []byte
					if withID {
						id = []byte(fmt.Sprint(n))
					}
					_, _, err := s.Enqueue(ctx, keys[i][0], keys[i][1], id, payload)
					return err
				})
				fl.Measure(b)
				fl.Report(b, rate)
			})
		}
	}
}

// BenchmarkAckSenders is the store alone under k concurrent callers of a
// durable Ack of one message each, every caller on a queue of its own
// filled beforehand; beside it the disk's floors of the same run.
func BenchmarkAckSenders(b *testing.B) {
	for _, k := range []int{1, 64} {
		b.Run(fmt.Sprintf("senders=%d", k), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			payload := make([]byte, 1024)
			per := b.N/k + 2 // a caller may take a few more calls than its share
			queues := make([][]byte, k)
			var wg sync.WaitGroup
			for i := range queues {
				queues[i] = storetest.Key(fmt.Sprint("ack", i))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						if _, _, err := s.Enqueue(ctx, queues[i], nil, nil, payload); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			fl := benchfloor.Floors{Size: len(payload), Batch: k}
			fl.Measure(b)
			acked := make([]uint64, k)
			b.ReportAllocs()
			rate := benchfloor.Concurrent(b, k, "acks/s", func(i int, _ int64) error {
				acked[i]++
				_, err := s.Ack(ctx, queues[i], acked[i])
				return err
			})
			fl.Measure(b)
			fl.Report(b, rate)
		})
	}
}

// benchStore is a store on a schema of its own in the test cluster, with
// limits no benchmark reaches.
func benchStore(b *testing.B) *Store {
	s, err := Open(context.Background(), pgtest.NewSchema(b), store.Limits{MaxQueueDepth: 1 << 30, MaxKeyPackages: 1 << 30}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
