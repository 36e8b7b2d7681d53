package mls

import (
	"fmt"
	"sync"
	"testing"
)

// Benchmarks of the group state machine. Run with
//
//	go test -run '^$' -bench 'Group' -benchmem ./internal/mls
//
// Groups are built once per size (outside the timed loops) by a single
// commit that adds every member. In such a tree only the creator's path
// has parent nodes, so a member's first commit encrypts its path secrets to
// about N-1 leaves: the commit benchmarks show that worst case. The
// 10000-member cases run unless -short is set.

// benchGroupState is a group of n members as seen by the creator (leaf 0)
// and by the member at the last leaf, both stored.
type benchGroupState struct {
	creator, member []byte
}

var (
	benchMu     sync.Mutex
	benchGroups = map[int]*benchGroupState{}
)

func benchKeyPackages(b *testing.B, n int) ([]*KeyPackage, []*KeyPackagePrivate) {
	kps := make([]*KeyPackage, n)
	privs := make([]*KeyPackagePrivate, n)
	for i := range kps {
		s, err := NewSigner(scSuite, []byte(fmt.Sprintf("member-%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		if kps[i], privs[i], err = GenerateKeyPackage(scSuite, s, nil); err != nil {
			b.Fatal(err)
		}
	}
	return kps, privs
}

func benchGroup(b *testing.B, n int) *benchGroupState {
	benchMu.Lock()
	defer benchMu.Unlock()
	if st, ok := benchGroups[n]; ok {
		return st
	}
	s, err := NewSigner(scSuite, []byte("creator"))
	if err != nil {
		b.Fatal(err)
	}
	g, err := CreateGroup(scSuite, nil, s, nil)
	if err != nil {
		b.Fatal(err)
	}
	kps, privs := benchKeyPackages(b, n-1)
	// The tree goes out of band: in the Welcome it would be hashed once
	// per new member (the HPKE context is the encrypted GroupInfo).
	res, err := g.AddMembers(kps, &CommitOptions{ForcePath: true, OmitRatchetTree: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := g.MergePendingCommit(); err != nil {
		b.Fatal(err)
	}
	m, err := JoinFromWelcome(res.Welcome, privs[n-2], &JoinOptions{RatchetTree: g.RatchetTree()})
	if err != nil {
		b.Fatal(err)
	}
	st := &benchGroupState{}
	if st.creator, err = g.MarshalBinary(); err != nil {
		b.Fatal(err)
	}
	if st.member, err = m.MarshalBinary(); err != nil {
		b.Fatal(err)
	}
	benchGroups[n] = st
	return st
}

// BenchmarkGroupCreateAndAdd: create a group and add N-1 members in one
// commit (with path), Welcome included.
func BenchmarkGroupCreateAndAdd(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			kps, _ := benchKeyPackages(b, n-1)
			s, _ := NewSigner(scSuite, []byte("creator"))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g, err := CreateGroup(scSuite, nil, s, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := g.AddMembers(kps, nil); err != nil {
					b.Fatal(err)
				}
				if _, err := g.MergePendingCommit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroupJoinFromWelcome: one new member joins from the Welcome of
// the commit that added N-1 members (tree in the Welcome).
func BenchmarkGroupJoinFromWelcome(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			kps, privs := benchKeyPackages(b, n-1)
			s, _ := NewSigner(scSuite, []byte("creator"))
			g, err := CreateGroup(scSuite, nil, s, nil)
			if err != nil {
				b.Fatal(err)
			}
			res, err := g.AddMembers(kps, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := JoinFromWelcome(res.Welcome, privs[n-2], nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroupCommitPath: a member makes a commit with an UpdatePath
// (SelfUpdate) in a group of N; the commit is discarded after each round
// so the group stays the same.
func BenchmarkGroupCommitPath(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("10000 members in -short mode")
			}
			st := benchGroup(b, n)
			g, err := UnmarshalGroup(st.member)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := g.SelfUpdate(nil); err != nil {
					b.Fatal(err)
				}
				if err := g.DiscardPendingCommit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroupProcessCommitPath: the creator processes a commit with an
// UpdatePath from another member in a group of N.
func BenchmarkGroupProcessCommitPath(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("10000 members in -short mode")
			}
			st := benchGroup(b, n)
			m, err := UnmarshalGroup(st.member)
			if err != nil {
				b.Fatal(err)
			}
			res, err := m.SelfUpdate(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				g, err := UnmarshalGroup(st.creator)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := g.ProcessMessage(res.Message); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroupProtect and BenchmarkGroupUnprotect: a 1 KiB application
// message in a group of 10.
func BenchmarkGroupProtect(b *testing.B) {
	st := benchGroup(b, 10)
	g, _ := UnmarshalGroup(st.member)
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Protect(msg, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGroupUnprotect(b *testing.B) {
	st := benchGroup(b, 10)
	sender, _ := UnmarshalGroup(st.member)
	g, _ := UnmarshalGroup(st.creator)
	msg := make([]byte, 1024)
	const batch = 500
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		var cts [][]byte
		for j := 0; j < batch && i+j < b.N; j++ {
			ct, err := sender.Protect(msg, nil)
			if err != nil {
				b.Fatal(err)
			}
			cts = append(cts, ct)
		}
		b.StartTimer()
		for _, ct := range cts {
			if _, err := g.ProcessMessage(ct); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGroupMarshal and BenchmarkGroupUnmarshal: storing and loading a
// member's state in a group of N.
func BenchmarkGroupMarshal(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			g, err := UnmarshalGroup(benchGroup(b, n).member)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out, _ := g.MarshalBinary()
				b.SetBytes(int64(len(out)))
			}
		})
	}
}

func BenchmarkGroupUnmarshal(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			st := benchGroup(b, n).member
			b.SetBytes(int64(len(st)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := UnmarshalGroup(st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
