package mls

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPQSuites compares the post-quantum suites with suite 1 in one
// run: create a group and add N-1 members, join from the Welcome, commit
// with an UpdatePath, process that commit, protect and unprotect a 1 KiB
// message. Each iteration runs the operation once in suite 1 and once in
// the suite measured, alternately, so both see the same machine: ns/op is
// the suite's, "base-ns" suite 1's and "ratio" their quotient. The join
// lines also report the sizes in bytes of a KeyPackage, the Welcome of the
// create-and-add commit (N-1 new members, tree out of band) and a commit
// with path (and suite 1's). Run it with
//
//	go test -run '^$' -bench PQSuites -benchtime 20x ./internal/mls
//
// The README's table comes from one such run.
func BenchmarkPQSuites(b *testing.B) {
	suites := []CipherSuite{
		MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
		MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519,
		MLS_192_MLKEM1024_AES256GCM_SHA384_P384,
		MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44,
		MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87,
	}
	for _, n := range []int{10, 100} {
		for _, op := range []string{"create+add", "join", "commit", "process", "protect", "unprotect"} {
			for _, cs := range suites {
				b.Run(fmt.Sprintf("N=%d/%s/%s", n, op, cs.Name()), func(b *testing.B) {
					base := pqFixture(b, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, n)
					f := pqFixture(b, cs, n)
					var tb, tf time.Duration
					for b.Loop() {
						tb += benchPQ(b, base, op)
						tf += benchPQ(b, f, op)
					}
					b.ReportMetric(float64(tf.Nanoseconds())/float64(b.N), "ns/op")
					b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "base-ns")
					b.ReportMetric(float64(tf)/float64(tb), "ratio")
					if op == "join" {
						b.ReportMetric(float64(len(f.kps[0].Marshal())), "kp-bytes")
						b.ReportMetric(float64(len(f.add.Welcome)), "welcome-bytes")
						b.ReportMetric(float64(len(f.update.Message)), "commit-bytes")
						b.ReportMetric(float64(len(base.add.Welcome)), "base-welcome-bytes")
						b.ReportMetric(float64(len(base.update.Message)), "base-commit-bytes")
					}
				})
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
	sender, receiver          *Group // for unprotect
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

// benchPQ runs op once on f and returns the time of the operation itself
// (its untimed preparation, such as loading a stored state, left out).
func benchPQ(b *testing.B, f *pqBench, op string) time.Duration {
	n := len(f.signers)
	msg := make([]byte, 1024)
	var start time.Time
	var err error
	switch op {
	case "create+add":
		start = time.Now()
		var g *Group
		if g, err = CreateGroup(f.cs, nil, f.signers[0], nil); err == nil {
			_, err = g.AddMembers(f.kps, &CommitOptions{OmitRatchetTree: true})
		}
	case "join":
		start = time.Now()
		_, err = JoinFromWelcome(f.add.Welcome, f.privs[n-2], f.join)
	case "commit":
		start = time.Now()
		if _, err = f.member.SelfUpdate(nil); err == nil {
			err = f.member.DiscardPendingCommit()
		}
	case "process":
		g, uerr := UnmarshalGroup(f.creatorState)
		if uerr != nil {
			b.Fatal(uerr)
		}
		start = time.Now()
		_, err = g.ProcessMessage(f.update.Message)
	case "protect":
		start = time.Now()
		_, err = f.member.Protect(msg, nil)
	case "unprotect":
		// The member protects, the creator (a stored copy, whose ratchet
		// follows) unprotects.
		if f.receiver == nil {
			if f.receiver, err = UnmarshalGroup(f.creatorState); err != nil {
				b.Fatal(err)
			}
			if f.sender, err = UnmarshalGroup(f.memberState); err != nil {
				b.Fatal(err)
			}
		}
		ct, perr := f.sender.Protect(msg, nil)
		if perr != nil {
			b.Fatal(perr)
		}
		start = time.Now()
		_, err = f.receiver.ProcessMessage(ct)
	}
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s in %v: %v", op, f.cs.Name(), err)
	}
	return d
}
