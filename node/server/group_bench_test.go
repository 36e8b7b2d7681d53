package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/client"
)

// grpBenchMembers is the group size of the group benchmarks.
const grpBenchMembers = 1000

// grpBenchIdentities makes k identities.
func grpBenchIdentities(b *testing.B, k int) []testIdentity {
	ids := make([]testIdentity, k)
	for i := range ids {
		ids[i] = newTestIdentity(b)
	}
	return ids
}

// BenchmarkGroupFanOut1000: one member fans a 1 KiB application message out
// to the 1000 other members of its group through the client over QUIC; each
// operation returns once all 1000 queue entries are durable.
func BenchmarkGroupFanOut1000(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	sender := newTestIdentity(b)
	c := n.dial(b, sender.priv)
	recipients := grpKeys(grpBenchIdentities(b, grpBenchMembers)...)
	g := []byte("bench-fan-out-1k")
	if _, err := c.SubmitCommit(ctx, client.CommitRequest{Message: grpPrivate(g, 0, grpContentCommit, "create"), Recipients: recipients}); err != nil {
		b.Fatal(err)
	}
	msg := grpPrivate(g, 1, grpContentApplication, string(benchPayload()))
	msg = msg[:benchPayloadSize] // a 1 KiB MLSMessage
	b.SetBytes(benchPayloadSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.FanOut(ctx, nil, msg, recipients); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*grpBenchMembers)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkGroupCommit1000Acks: a member of a 1001-member group submits a
// 1 KiB commit to the 1000 others, each connected over its own QUIC
// connection with a push subscription; an operation ends when every one of
// them has received the commit and its ack has returned (the ack is durable).
func BenchmarkGroupCommit1000Acks(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	committer := newTestIdentity(b)
	cc := n.dial(b, committer.priv)
	members := grpBenchIdentities(b, grpBenchMembers)
	recipients := grpKeys(members...)
	g := []byte("bench-commit-1k")

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
			_, err = c.Subscribe(ctx, m.pub, 0, func(ctx context.Context, batch []client.Envelope) error {
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
	payload := string(benchPayload())
	epoch := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		acked.Store(0)
		commit := grpPrivate(g, epoch, grpContentCommit, payload)[:benchPayloadSize]
		res, err := cc.SubmitCommit(ctx, client.CommitRequest{Message: commit, Recipients: recipients})
		if err != nil {
			b.Fatal(err)
		}
		epoch = res.Epoch
		select {
		case <-allDone:
		case <-time.After(60 * time.Second):
			b.Fatalf("epoch %d: %d of %d members acked", epoch, acked.Load(), grpBenchMembers)
		}
	}
	b.ReportMetric(float64(b.N*grpBenchMembers)/b.Elapsed().Seconds(), "acks/s")
}
