package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/benchfloor"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/client"
)

// grpBenchMembers is the group size of the group benchmarks.
const grpBenchMembers = 1000

// grpBenchGroup makes a group of the committer (connected to n) and k
// members added in one commit; the members' queues hold the Welcome.
func grpBenchGroup(b *testing.B, n *testNode, k int) (*grouptest.Member, []testIdentity) {
	committer := grouptest.NewMember(b)
	committer.Conn = n.dial(b, committer.Priv)
	committer.Create(b)
	ids := make([]testIdentity, k)
	kps := make([]*mls.KeyPackage, k)
	for i := range ids {
		m := grouptest.NewMember(b)
		ids[i] = testIdentity{m.Pub, m.Priv}
		kp, _, err := mls.GenerateKeyPackage(grouptest.Suite, m.Signer, nil)
		if err != nil {
			b.Fatal(err)
		}
		kps[i] = kp
	}
	res, err := committer.Group.AddMembers(kps, &mls.CommitOptions{OmitRatchetTree: true})
	if err != nil {
		b.Fatal(err)
	}
	committer.Submit(b, res)
	return committer, ids
}

// BenchmarkGroupFanOut1000: one member fans a 1 KiB application message out
// to the 1000 other members of its group through the client over QUIC; each
// operation returns once all 1000 queue entries are durable.
func BenchmarkGroupFanOut1000(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	sender, _ := grpBenchGroup(b, n, grpBenchMembers)
	c, g := sender.Conn, sender.Group.GroupID()
	msg := grpPrivate(g, 1, grpContentApplication, string(benchPayload()))
	msg = msg[:benchPayloadSize] // a 1 KiB MLSMessage
	// The floor: one fsync of the payload and a queue entry (64 bytes)
	// for each of the 1000 members.
	fl := benchfloor.Floors{Size: 64 + benchPayloadSize/grpBenchMembers, Batch: grpBenchMembers}
	fl.Measure(b)
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := c.FanOut(ctx, nil, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rate := float64(b.N*grpBenchMembers) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "deliveries/s")
	fl.Measure(b)
	fl.Report(b, rate)
}

// BenchmarkGroupCommit1000Acks: a member of a 1001-member group submits a
// self-update commit to the 1000 others, each connected over its own QUIC
// connection with a push subscription; an operation ends when every one of
// them has received the commit and its ack has returned (the ack is durable).
func BenchmarkGroupCommit1000Acks(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	committer, members := grpBenchGroup(b, n, grpBenchMembers)

	var (
		acked   atomic.Int64
		allDone = make(chan struct{}, 1)
		failMu  sync.Mutex
		failed  error
	)
	conns := make([]*client.Client, len(members))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, m := range members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := client.Dial(dctx, n.addr, client.Config{Identity: m.priv, PinnedCert: n.certDER})
			if err != nil {
				failMu.Lock()
				failed = fmt.Errorf("dial member %d: %w", i, err)
				failMu.Unlock()
				return
			}
			conns[i] = c
			_, err = c.Subscribe(ctx, m.pub, 1, func(ctx context.Context, batch []client.Envelope) error {
				if _, err := c.Ack(ctx, m.pub, batch[len(batch)-1].Seq); err != nil {
					return err
				}
				if acked.Add(int64(len(batch))) == grpBenchMembers {
					allDone <- struct{}{}
				}
				return nil
			})
			if err != nil {
				failMu.Lock()
				failed = fmt.Errorf("subscribe member %d: %w", i, err)
				failMu.Unlock()
			}
		}()
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if failed != nil {
		b.Fatal(failed)
	}
	var epoch uint64
	b.ReportAllocs()
	for b.Loop() {
		acked.Store(0)
		up, err := committer.Group.SelfUpdate(nil)
		if err != nil {
			b.Fatal(err)
		}
		epoch = committer.Submit(b, up).Epoch
		select {
		case <-allDone:
		case <-time.After(60 * time.Second):
			b.Fatalf("epoch %d: %d of %d members acked", epoch, acked.Load(), grpBenchMembers)
		}
	}
	b.ReportMetric(float64(b.N*grpBenchMembers)/b.Elapsed().Seconds(), "acks/s")
}
