package mls

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

// BenchmarkPublicGroupApplyCommit: the delivery service's check of one
// commit (PublicGroup.ApplyCommit) in groups of N, for a commit that adds
// one member by value (no path: what a node sees for every invitation).
// The committer builds each commit outside the timer. Ed25519Verify is one
// raw signature check in the same run, to read the others as a ratio.
func BenchmarkPublicGroupApplyCommit(b *testing.B) {
	b.Run("Ed25519Verify", func(b *testing.B) {
		pub, priv, _ := ed25519.GenerateKey(nil)
		msg := make([]byte, 256)
		sig := ed25519.Sign(priv, msg)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("verify")
			}
		}
	})
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("10000 members in -short mode")
			}
			g, err := UnmarshalGroup(benchGroup(b, n).creator)
			if err != nil {
				b.Fatal(err)
			}
			g.config.PublicHandshake = true
			gi, err := g.GroupInfo()
			if err != nil {
				b.Fatal(err)
			}
			pg, err := NewPublicGroup(gi)
			if err != nil {
				b.Fatal(err)
			}
			kps, _ := benchKeyPackages(b, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				res, err := g.AddMembers(kps[i:i+1], &CommitOptions{OmitRatchetTree: true})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := g.MergePendingCommit(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := pg.ApplyCommit(res.Message); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
