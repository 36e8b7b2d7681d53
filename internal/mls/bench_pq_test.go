package mls

import (
	"fmt"
	"testing"
)

// BenchmarkPQSuites compares the post-quantum suites with suite 1 in one
// run: create a group and add N-1 members, join from the Welcome, commit
// with an UpdatePath, process that commit, protect and unprotect a 1 KiB
// message; the join lines also report the sizes in bytes of a KeyPackage,
// the Welcome of the create-and-add commit (N-1 new members, tree out of
// band) and a commit with path. The suites of one operation run one after
// the other, so that they share the machine's conditions. Run it with
//
//	go test -run '^$' -bench PQSuites -benchtime 200ms -count 3 ./internal/mls
//
// The README's table comes from one such run (the fastest of the three).
func BenchmarkPQSuites(b *testing.B) {
	suites := []CipherSuite{
		MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
		MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
		MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519,
		MLS_192_MLKEM1024_AES256GCM_SHA384_P384,
		MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44,
		MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87,
	}
	for _, n := range []int{10, 100} {
		for _, op := range []string{"create+add", "join", "commit", "process", "protect", "unprotect"} {
			for _, cs := range suites {
				b.Run(fmt.Sprintf("N=%d/%s/%s", n, op, cs.Name()), func(b *testing.B) { benchPQ(b, pqFixture(b, cs, n), op) })
			}
		}
	}
}

// pqBench is a group of n members in one suite: the creator, and the last
// member joined from the Welcome, with what the operations need.
type pqBench struct {
	cs                        CipherSuite
	signers                   []*Signer
	kps                       []*KeyPackage
	privs                     []*KeyPackagePrivate
	add, update               *CommitResult
	join                      *JoinOptions
	creator, member           *Group
	creatorState, memberState []byte
}

var pqFixtures = map[string]*pqBench{}

func pqFixture(b *testing.B, cs CipherSuite, n int) *pqBench {
	key := fmt.Sprint(cs, n)
	if f, ok := pqFixtures[key]; ok {
		return f
	}
	f := &pqBench{cs: cs}
	pqFixtures[key] = f
	signers := make([]*Signer, n)
	kps := make([]*KeyPackage, n-1)
	privs := make([]*KeyPackagePrivate, n-1)
	for i := range signers {
		s, err := NewSigner(cs, fmt.Appendf(nil, "member-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		signers[i] = s
		if i > 0 {
			if kps[i-1], privs[i-1], err = GenerateKeyPackage(cs, s, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	// One group to measure the other operations in: the creator, and the
	// last member joined from the Welcome.
	creator, err := CreateGroup(cs, nil, signers[0], nil)
	if err != nil {
		b.Fatal(err)
	}
	add, err := creator.AddMembers(kps, &CommitOptions{ForcePath: true, OmitRatchetTree: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := creator.MergePendingCommit(); err != nil {
		b.Fatal(err)
	}
	join := &JoinOptions{RatchetTree: creator.RatchetTree()}
	member, err := JoinFromWelcome(add.Welcome, privs[n-2], join)
	if err != nil {
		b.Fatal(err)
	}
	creatorState, err := creator.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	memberState, err := member.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	update, err := member.SelfUpdate(nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := member.DiscardPendingCommit(); err != nil {
		b.Fatal(err)
	}
	f.signers, f.kps, f.privs, f.add, f.update, f.join = signers, kps, privs, add, update, join
	f.creator, f.member, f.creatorState, f.memberState = creator, member, creatorState, memberState
	return f
}

func benchPQ(b *testing.B, f *pqBench, op string) {
	cs, signers, kps, privs, add, update, join := f.cs, f.signers, f.kps, f.privs, f.add, f.update, f.join
	member, creatorState, memberState := f.member, f.creatorState, f.memberState
	n := len(signers)
	msg := make([]byte, 1024)

	switch op {
	case "create+add":
		for b.Loop() {
			g, err := CreateGroup(cs, nil, signers[0], nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := g.AddMembers(kps, &CommitOptions{OmitRatchetTree: true}); err != nil {
				b.Fatal(err)
			}
		}
	case "join":
		for b.Loop() {
			if _, err := JoinFromWelcome(add.Welcome, privs[n-2], join); err != nil {
				b.Fatal(err)
			}
		}
		// The sizes ride on this line of the output.
		b.ReportMetric(float64(len(kps[0].Marshal())), "kp-bytes")
		b.ReportMetric(float64(len(add.Welcome)), "welcome-bytes")
		b.ReportMetric(float64(len(update.Message)), "commit-bytes")
	case "commit":
		for b.Loop() {
			if _, err := member.SelfUpdate(nil); err != nil {
				b.Fatal(err)
			}
			if err := member.DiscardPendingCommit(); err != nil {
				b.Fatal(err)
			}
		}
	case "process":
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			g, err := UnmarshalGroup(creatorState)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := g.ProcessMessage(update.Message); err != nil {
				b.Fatal(err)
			}
		}
	case "protect":
		for b.Loop() {
			if _, err := member.Protect(msg, nil); err != nil {
				b.Fatal(err)
			}
		}
	case "unprotect":
		// Fresh copies: the protect run moved the member's ratchet on.
		sender, err := UnmarshalGroup(memberState)
		if err != nil {
			b.Fatal(err)
		}
		receiver, err := UnmarshalGroup(creatorState)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			ct, err := sender.Protect(msg, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := receiver.ProcessMessage(ct); err != nil {
				b.Fatal(err)
			}
		}
	}
}
