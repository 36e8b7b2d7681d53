package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/benchfloor"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// benchCacheMiB is the writer cache the benchmarks run with (qpnode
// --sqlite-cache 16): it holds a 1000-member fan-out.
const benchCacheMiB = 16

func benchStore(b *testing.B) *Store {
	return benchStoreLimits(b, store.Limits{MaxQueueDepth: 1 << 30, MaxKeyPackages: 1 << 30})
}

// benchStoreLimits is benchStore with limits.
func benchStoreLimits(b *testing.B, limits store.Limits) *Store {
	b.Helper()
	s, err := OpenOptions(context.Background(), filepath.Join(b.TempDir(), "node.db"),
		limits, Options{WriterCacheMiB: benchCacheMiB}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// processCPU is the CPU time the process has used: on a shared machine,
// the steadier measure of the store's work than the wall clock.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU used since start per unit of n.
func reportCPU(b *testing.B, start time.Duration, n int, unit string) {
	b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(n), unit)
}

// BenchmarkEnqueue1KiB is one durable (fsynced) Enqueue of 1 KiB with a
// client message id, the node's hot path.
func BenchmarkEnqueue1KiB(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	r, sender := storetest.Key("r"), storetest.Key("s")
	payload := make([]byte, 1024)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := s.Enqueue(ctx, r, sender, []byte(fmt.Sprint(i)), payload); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEnqueue1KiBParallel is Enqueue from many goroutines to many
// recipients (writes are serialised; this shows the cost of the queueing).
func BenchmarkEnqueue1KiBParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	payload := make([]byte, 1024)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	before := s.commits.Load()
	b.RunParallel(func(pb *testing.PB) {
		r := storetest.Key(fmt.Sprintf("r %p", pb))
		for pb.Next() {
			if _, _, err := s.Enqueue(ctx, r, nil, nil, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-before), "calls/commit")
}

// BenchmarkReceiveAck100 is one Receive of a batch of 100 messages of 1 KiB
// followed by the Ack of the batch. The batch is filled outside the timer in
// one transaction.
func BenchmarkReceiveAck100(b *testing.B) {
	const batch = 100
	s := benchStore(b)
	ctx := context.Background()
	r := storetest.Key("r")
	payload := make([]byte, 1024)
	b.SetBytes(batch * int64(len(payload)))
	b.ReportAllocs()
	var cursor uint64
	for b.Loop() {
		b.StopTimer()
		benchFill(b, s, r, batch, payload)
		b.StartTimer()
		msgs, err := s.Receive(ctx, r, cursor, batch)
		if err != nil || len(msgs) != batch {
			b.Fatalf("Receive: %d messages, %v", len(msgs), err)
		}
		cursor = msgs[len(msgs)-1].Seq
		if n, err := s.Ack(ctx, r, cursor); err != nil || n != batch {
			b.Fatalf("Ack: %d, %v", n, err)
		}
	}
}

// BenchmarkAckSenders is k concurrent callers each acknowledging the
// messages of its own queue one at a time, durably (a receiver's ack after
// each push), b.N acks in all. The queues are filled before the timer
// starts.
func BenchmarkAckSenders(b *testing.B) {
	for _, k := range []int{64} {
		b.Run(fmt.Sprintf("senders=%d", k), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			payload := make([]byte, 1024)
			keys := make([][]byte, k)
			for i := range keys {
				keys[i] = storetest.Key(fmt.Sprint("r", i))
				benchFill(b, s, keys[i], b.N/k+1, payload)
			}
			per := b.N/k + 1
			before := s.commits.Load()
			b.ReportAllocs()
			cpu := processCPU(b)
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range k {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for seq := range uint64(per) {
						if n, err := s.Ack(ctx, keys[i], seq+1); err != nil || n != 1 {
							b.Errorf("ack of %d deleted %d messages, %v", seq+1, n, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(per*k)/b.Elapsed().Seconds(), "acks/s")
			reportCPU(b, cpu, per*k, "cpu-µs/ack")
			b.ReportMetric(float64(per*k)/float64(s.commits.Load()-before), "calls/commit")
		})
	}
}

// benchFill appends n messages to r's queue in one transaction.
func benchFill(b *testing.B, s *Store, r []byte, n int, payload []byte) {
	ctx := context.Background()
	err := s.write(ctx, "fill", func(ctx context.Context, tx *sql.Tx) error {
		for range n {
			if _, err := s.appendTx(ctx, tx, r, nil, nil, payload, 1, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTakeKeyPackage is one atomic TakeKeyPackage (a durable delete).
// Packages are put outside the timer, 1000 at a time.
func BenchmarkTakeKeyPackage(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	id := storetest.Key("id")
	pkg := make([]byte, 300) // about the size of a suite-1 KeyPackage
	left, next := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		if left == 0 {
			b.StopTimer()
			err := s.write(ctx, "fill", func(ctx context.Context, tx *sql.Tx) error {
				for range 1000 {
					next++
					copy(pkg, fmt.Sprint(next))
					if _, err := tx.ExecContext(ctx,
						`INSERT INTO key_packages (identity, fingerprint, package, last_resort, created_at) VALUES (?, ?, ?, 0, 0)`,
						id, storetest.Key(fmt.Sprint(next)), pkg); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			left = 1000
			b.StartTimer()
		}
		if _, err := s.TakeKeyPackage(ctx, id); err != nil {
			b.Fatal(err)
		}
		left--
	}
}

// BenchmarkFanOut1KiBTo1000 is one FanOut of a 1 KiB application message to
// 1000 recipients: 1000 queue appends in one durable transaction. It reports
// recipient-deliveries per second beside the disk's floors for the same
// bytes, measured in the same run: one 1 KiB write+fsync per delivery (raw)
// and 1000 of them in one write+fsync (batched, what one transaction of the
// fan-out costs at least).
func BenchmarkFanOut1KiBTo1000(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	g, sender := storetest.GroupID("bench"), storetest.Key("sender")
	recipients := make([][]byte, 1000)
	for i := range recipients {
		recipients[i] = storetest.Key(fmt.Sprint("recipient ", i))
	}
	if err := s.CreateGroup(ctx, g, sender, 0, []byte("view"), append([][]byte{sender}, recipients...)); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1024)
	fl := benchfloor.Floors{Size: len(payload), Batch: len(recipients)}
	fl.Measure(b)
	b.SetBytes(int64(len(payload) * len(recipients)))
	b.ReportAllocs()
	i := 0
	cpu := processCPU(b)
	for b.Loop() {
		if _, err := s.FanOut(ctx, g, sender, []byte(fmt.Sprint(i)), payload, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, cpu, i*len(recipients), "cpu-µs/delivery")
	rate := float64(i*len(recipients)) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "deliveries/s")
	fl.Measure(b)
	fl.Report(b, rate)
}

// BenchmarkSubmitCommit10 is one accepted commit fanned out to 9 members and
// a Welcome to one joiner.
func BenchmarkSubmitCommit10(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	g := storetest.GroupID("bench")
	members := make([][]byte, 9)
	for i := range members {
		members[i] = storetest.Key(fmt.Sprint("member ", i))
	}
	commit, welcome := make([]byte, 2048), make([]byte, 4096)
	committer := storetest.Key("committer")
	roster := append([][]byte{committer}, members...)
	if err := s.CreateGroup(ctx, g, committer, 0, []byte("view"), roster); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var epoch uint64
	for b.Loop() {
		joiner := [][]byte{storetest.Key(fmt.Sprint("joiner ", epoch))}
		check := func(store.GroupView) (store.CommitVerdict, error) {
			return store.CommitVerdict{View: commit, Roster: roster, Recipients: members, WelcomeRecipients: joiner}, nil
		}
		if _, err := s.SubmitCommit(ctx, g, epoch, committer, []byte(fmt.Sprint(epoch)), commit, welcome, check); err != nil {
			b.Fatal(err)
		}
		epoch++
	}
}

// BenchmarkEnqueueSenders is the store alone under k concurrent callers of
// a durable 1 KiB Enqueue (with a client message id), beside the raw and
// batched (k records per fsync) write+fsync floors of the same disk in the
// same run: what the group commit makes of the disk.
func BenchmarkEnqueueSenders(b *testing.B) {
	for _, k := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("senders=%d", k), func(b *testing.B) {
			benchEnqueueSenders(b, benchStore(b), k)
		})
	}
}

// BenchmarkEnqueueSendersQuotas is BenchmarkEnqueueSenders with 64 callers
// and the strangers' quotas on, as a node runs: every enqueue asks the
// rosters whether its sender is a stranger (the quotas are too large to be
// reached).
func BenchmarkEnqueueSendersQuotas(b *testing.B) {
	b.Run("senders=64", func(b *testing.B) {
		benchEnqueueSenders(b, benchStoreLimits(b, store.Limits{MaxQueueDepth: 1 << 30, MaxKeyPackages: 1 << 30,
			GroupReserve: store.DefaultGroupReserve, MaxStrangerMessages: 1 << 30, MaxStrangerBytes: 1 << 50}), 64)
	})
}

func benchEnqueueSenders(b *testing.B, s *Store, k int) {
	ctx := context.Background()
	payload := make([]byte, 1024)
	fl := benchfloor.Floors{Size: len(payload), Batch: k}
	fl.Measure(b)
	keys := make([][2][]byte, k)
	for i := range keys {
		keys[i] = [2][]byte{storetest.Key(fmt.Sprint("r", i)), storetest.Key(fmt.Sprint("s", i))}
	}
	before := s.commits.Load()
	b.ReportAllocs()
	cpu := processCPU(b)
	rate := benchfloor.Concurrent(b, k, "deliveries/s", func(i int, n int64) error {
		_, _, err := s.Enqueue(ctx, keys[i][0], keys[i][1], []byte(fmt.Sprint(n)), payload)
		return err
	})
	reportCPU(b, cpu, b.N, "cpu-µs/delivery")
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-before), "calls/commit")
	fl.Measure(b)
	fl.Report(b, rate)
}
