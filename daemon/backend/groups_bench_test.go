package backend

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/benchfloor"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// groupsBenchPair is Alice and Bob in one group through a real node.
func groupsBenchPair(b *testing.B) (alice, bob *groupsUser, gid string) {
	b.Helper()
	node := testnode.StartBenchNode(b, b.TempDir(), "127.0.0.1:0")
	alice, bob = groupsBenchStart(b, node), groupsBenchStart(b, node)
	ctx := context.Background()
	g, err := alice.b.CreateGroup(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	gid = FormatKey(g.ID)
	if _, _, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{bob.id}); err != nil {
		b.Fatal(err)
	}
	if j, err := bob.b.Join(ctx, 10*time.Second); err != nil || len(j) != 1 {
		b.Fatalf("join: %v %v", j, err)
	}
	return alice, bob, gid
}

func groupsBenchStart(b *testing.B, node *testnode.Node) *groupsUser {
	b.Helper()
	st, err := store.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	be, err := New(Config{Store: st, Logger: testnode.Logger(), NodeAddr: node.Addr, NodeCert: node.CertDER, Groups: true, Invitations: InviteAnyone,
		KeyPackages: MLSKeyPackages{}, KeyPackageTarget: 3})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- be.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	r, err := be.Register(ctx)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := be.Status(ctx)
		if err == nil && s.KeyPackagesKnown && s.KeyPackagesLeft == 3 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no KeyPackages at the node")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &groupsUser{b: be, id: r.Identity}
}

// processCPU is the CPU time the process has used (both daemons and the
// node run in it): on a shared machine, the steadier measure of work.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// groupsBenchWait waits until Bob's group has seq want. It reads only the
// group's last number (not Groups, which decodes every group), so that the
// waiting costs the figures little.
func groupsBenchWait(b *testing.B, bob *groupsUser, gid string, want uint64) {
	ctx := context.Background()
	id, err := hex.DecodeString(gid)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		changed := bob.b.Changed()
		var last uint64
		if err := bob.b.view(ctx, func(tx *store.Tx) (err error) { last, err = tx.LastSeq(id); return }); err != nil {
			b.Fatal(err)
		}
		if last >= want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("message %d did not arrive", want)
		}
	}
}

// BenchmarkGroupSendReceive measures one message from Alice's Send to its
// commit in Bob's history (encrypt, outbox, node fan-out over QUIC, push,
// decrypt, store), one at a time: p50 and p99 latency.
func BenchmarkGroupSendReceive(b *testing.B) {
	alice, bob, gid := groupsBenchPair(b)
	ctx := context.Background()
	var lat []time.Duration
	fl := benchfloor.Floors{Size: 1024, Batch: 1}
	fl.Measure(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := alice.b.Send(ctx, gid, fmt.Sprintf("m%d", i), nil); err != nil {
			b.Fatal(err)
		}
		groupsBenchWait(b, bob, gid, uint64(i+1))
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu = processCPU(b) - cpu
	slices.Sort(lat)
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/msg")
	p50 := lat[len(lat)/2]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// The floor: three durable commits one after the other (Alice's send,
	// the node's fan-out, Bob's receive), each a write and an fsync.
	fl.Measure(b)
	fl.Report(b, float64(len(lat))/b.Elapsed().Seconds())
	b.ReportMetric(float64(p50)/(3*float64(time.Second)/benchfloor.Mean(fl.Raw()).RecordsPerSec()), "p50/3fsyncs")
	// The same three fsyncs as they come here: apart, each about a third
	// of a message's time after the one before (benchfloor.Spaced).
	sp, err := benchfloor.Spaced(b.TempDir(), 1024, p50/3, 200*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(sp.PerSync.Microseconds()), "spaced-fsync-µs")
	b.ReportMetric(float64(p50)/float64(3*sp.PerSync), "p50/3spaced")
}

// BenchmarkGroupThroughput sends b.N messages back to back and waits until
// Bob stored them all: messages per second end to end. With senders=1 one
// API caller sends, each send answered once durable before the next: the
// raw floor (one write and fsync per message) bounds it. With senders=16,
// sixteen callers send at once (as several API clients, or one that does
// not wait for each answer): their sends share transactions, and the
// batched floor (16 records per fsync) bounds them.
func BenchmarkGroupThroughput(b *testing.B) {
	for _, senders := range []int{1, 16} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			alice, bob, gid := groupsBenchPair(b)
			fl := benchfloor.Floors{Size: 1024, Batch: senders}
			fl.Measure(b)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			cpu := processCPU(b)
			if err := sendConcurrently(b, alice.b, gid, senders); err != nil {
				b.Fatal(err)
			}
			groupsBenchWait(b, bob, gid, uint64(b.N))
			rate := float64(b.N) / time.Since(start).Seconds()
			b.StopTimer()
			cpu = processCPU(b) - cpu
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/msg")
			fl.Measure(b)
			fl.Report(b, rate)
		})
	}
}

// sendConcurrently has callers API callers send b.N messages to gid
// between them, each send answered before its caller's next, and returns
// the first error.
func sendConcurrently(b *testing.B, be *Backend, gid string, callers int) error {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := be.Send(ctx, gid, fmt.Sprintf("m%d", i), nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
