package mls

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Benchmarks of the group state machine against their floor: the cost of
// the primitives the operation cannot do without, measured in the same run
// between the timed runs and reported beside them (floor-ns/op, and the
// ratios x-floor of the wall-clock times and cpu-x-floor of the CPU
// times). Run with
//
//	go test -run '^$' -bench 'Floor' -benchtime 20x ./internal/mls
//
// The groups are in a full-tree state: every parent node holds a key, as
// after every other member has committed once (benchFullGroup), so a
// commit encrypts one path secret per level, and the 10,000-member state is
// built once per run. The floors, for suite 1 (X25519, AES-128-GCM,
// Ed25519), with d the length of the committer's filtered direct path:
//
//	commit:    d × (HPKE seal + node key derivation) + one more
//	           derivation (the new leaf's own HPKE key pair, RFC 9420
//	           §7.4) + 2 signatures (the path's leaf and the commit)
//	process:   one HPKE open + d node key derivations + 2 verifications
//	           (the receiver shares only the lowest path node with the
//	           committer, so it derives the whole chain)
//	create+add N: (N-1) × (2 verifications + one HPKE seal): each
//	           KeyPackage and its leaf are checked and each Welcome secret
//	           sealed; per core, with a group built on every core
//	protect:   one signature + AES-GCM of the content and of the sender data
//	           + 5 derivations (ratchet key, nonce and next secret, sender
//	           data key and nonce)
//	unprotect: the same with a verification for the signature.

// benchPrims runs one call of each primitive of suite 1 on prepared input.
type benchPrims struct {
	sign, verify func() // raw Ed25519 of a message of the size signed
	seal, open   func() // HPKE of a path secret (EncryptWithLabel)
	derive       func() // a node key pair from a path secret
	expand       func() // one ExpandWithLabel
	gcmSeal      func() // AES-GCM of the message content
	gcmOpen      func()
	gcmSmall     func() // AES-GCM of the sender data
}

// newBenchPrims prepares the primitives with a signed message of sigLen
// bytes and an encrypted content of gcmLen bytes.
func newBenchPrims(b *testing.B, sigLen, gcmLen int) *benchPrims {
	b.Helper()
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(nil)
	edPub := edPriv.Public().(ed25519.PublicKey)
	msg := bytes.Repeat([]byte{1}, sigLen)
	sig := ed25519.Sign(edPriv, msg)
	hpkePriv, hpkePub, err := s.GenerateKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	secret := bytes.Repeat([]byte{2}, s.HashSize())
	gc := bytes.Repeat([]byte{3}, 128)
	kem, ct, err := EncryptWithLabel(s, hpkePub, updatePathNodeLabel, gc, secret)
	if err != nil {
		b.Fatal(err)
	}
	key, nonce := make([]byte, s.AEADKeySize()), make([]byte, s.AEADNonceSize())
	content := make([]byte, gcmLen)
	sealed, _ := s.Seal(key, nonce, nil, content)
	return &benchPrims{
		sign:     func() { ed25519.Sign(edPriv, msg) },
		verify:   func() { ed25519.Verify(edPub, msg, sig) },
		seal:     func() { _, _, _ = EncryptWithLabel(s, hpkePub, updatePathNodeLabel, gc, secret) },
		open:     func() { _, _ = DecryptWithLabel(s, hpkePriv, updatePathNodeLabel, gc, kem, ct) },
		derive:   func() { _, _, _ = deriveNodeKeyPair(s, secret) },
		expand:   func() { _, _ = ExpandWithLabel(s, secret, "key", nil, 16) },
		gcmSeal:  func() { _, _ = s.Seal(key, nonce, nil, content) },
		gcmOpen:  func() { _, _ = s.Open(key, nonce, nil, sealed) },
		gcmSmall: func() { _, _ = s.Seal(key, nonce, nil, content[:min(8, len(content))]) },
	}
}

// times returns a function that runs f n times.
func times(n int, f ...func()) func() {
	return func() {
		for range n {
			for _, g := range f {
				g()
			}
		}
	}
}

// benchFloorLoop runs op b.N times on the timer, and after each run, with
// the timer stopped, setup for the next run and the floor once, so that
// both see the same load of the machine. It reports the floor per
// operation (floor-ns/op) and the ratio of the two (x-floor), and the same
// ratio of the CPU time the process spent (cpu-x-floor), which a machine
// shared with other work disturbs less than the wall clock, with that CPU
// time per operation (cpu-ns/op, all cores).
func benchFloorLoop(b *testing.B, setup, op, floor func()) {
	b.Helper()
	var floorTime, opCPU, floorCPU time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if setup != nil {
			setup()
		}
		c0 := processCPU()
		start := time.Now()
		floor()
		floorTime += time.Since(start)
		floorCPU += processCPU() - c0
		b.StartTimer()
		c1 := processCPU()
		op()
		opCPU += processCPU() - c1
	}
	b.StopTimer()
	reportFloor(b, benchTimedNs(b), float64(floorTime.Nanoseconds())/float64(b.N))
	b.ReportMetric(float64(opCPU)/float64(floorCPU), "cpu-x-floor")
	b.ReportMetric(float64(opCPU.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportFloor reports the timed figure's floor and their ratio.
func reportFloor(b *testing.B, perOp, floor float64) {
	b.ReportMetric(floor, "floor-ns/op")
	b.ReportMetric(perOp/floor, "x-floor")
}

// benchTimedNs is the time per operation of the finished timed loop.
func benchTimedNs(b *testing.B) float64 {
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// benchFullState is a group of n members in a full-tree state, stored as
// seen by the committer (the last leaf), the receiver (its sibling leaf)
// and the creator (leaf 0).
type benchFullState struct {
	committer, receiver, creator []byte
	pathLen                      int // the committer's filtered direct path
}

var (
	benchFullMu     sync.Mutex
	benchFullGroups = map[int]*benchFullState{}
)

// benchFullGroup builds (once per run and size) a group of n members, n
// even, by one commit that adds them all; then, on the tree level, every
// even leaf in turn refreshes its path with a real UpdatePath (new leaf key,
// parent hashes, leaf signature by its member), which fills every parent
// node. The three members kept learn the private keys of their direct
// paths as they would from those commits. Their epoch secrets stay those of
// the add commit; the three agree on the tree and so on every later epoch.
func benchFullGroup(b *testing.B, n int) *benchFullState {
	b.Helper()
	benchFullMu.Lock()
	defer benchFullMu.Unlock()
	if st, ok := benchFullGroups[n]; ok {
		return st
	}
	s, err := LookupSuite(scSuite)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := NewSigner(scSuite, []byte("creator"))
	if err != nil {
		b.Fatal(err)
	}
	creator, err := CreateGroup(scSuite, nil, signer, nil)
	if err != nil {
		b.Fatal(err)
	}
	kps, privs := benchKeyPackages(b, n-1)
	res, err := creator.AddMembers(kps, &CommitOptions{ForcePath: true, OmitRatchetTree: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := creator.MergePendingCommit(); err != nil {
		b.Fatal(err)
	}
	tree := creator.RatchetTree()
	join := func(leaf int) *Group {
		g, err := JoinFromWelcome(res.Welcome, privs[leaf-1], &JoinOptions{RatchetTree: tree})
		if err != nil {
			b.Fatal(err)
		}
		if g.self != LeafIndex(leaf) {
			b.Fatalf("member joined at leaf %d, want %d", g.self, leaf)
		}
		return g
	}
	committer, receiver := join(n-1), join(n-2)
	kept := []*Group{creator, receiver, committer}

	t := creator.tree.Clone()
	sigPriv := func(l int) []byte {
		if l == 0 {
			return signer.SignaturePriv
		}
		return privs[l-1].SignaturePriv
	}
	for l := 0; l < n; l += 2 {
		leaf := LeafIndex(l)
		pu, err := t.GeneratePath(s, leaf, t.LeafNode(leaf), sigPriv(l), creator.ctx.GroupID)
		if err != nil {
			b.Fatal(err)
		}
		for _, g := range kept {
			if g.self == leaf {
				g.priv = pu.Keys.Clone()
				continue
			}
			for _, x := range pu.Nodes {
				if treeIsBelow(g.self.Node(), x) {
					g.priv.Path[x] = bytes.Clone(pu.Keys.Path[x])
				}
			}
		}
		pu.Wipe()
	}
	st := &benchFullState{pathLen: len(t.FilteredDirectPath(committer.self))}
	for _, g := range kept {
		g.tree = t.Clone()
		g.ctx.TreeHash = t.TreeHash(s)
	}
	if st.creator, err = creator.MarshalBinary(); err != nil {
		b.Fatal(err)
	}
	if st.receiver, err = receiver.MarshalBinary(); err != nil {
		b.Fatal(err)
	}
	if st.committer, err = committer.MarshalBinary(); err != nil {
		b.Fatal(err)
	}
	benchFullGroups[n] = st
	return st
}

// loadWarm restores a stored group and fills its tree caches, as a group
// that stays in memory has them.
func loadWarm(b *testing.B, state []byte) *Group {
	b.Helper()
	g, err := UnmarshalGroup(state)
	if err != nil {
		b.Fatal(err)
	}
	g.tree.warm(g.suite)
	return g
}

var benchFloorSizes = []int{10, 1000, 10000}

func benchForSizes(b *testing.B, fn func(b *testing.B, n int)) {
	for _, n := range benchFloorSizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("10000 members in -short mode")
			}
			if scSuite != MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 {
				b.Skip("floors are measured for suite 1")
			}
			fn(b, n)
		})
	}
}

// BenchmarkFloorCommit: a member commits with a path (SelfUpdate) in a
// full tree of N; the commit is discarded after each round. No GroupInfo
// for external joiners is made (CommitOptions.OmitGroupInfo): that costs a
// signature and an encoding of the whole tree.
func BenchmarkFloorCommit(b *testing.B) {
	benchForSizes(b, func(b *testing.B, n int) {
		st := benchFullGroup(b, n)
		g := loadWarm(b, st.committer)
		p := newBenchPrims(b, 512, 0)
		opts := &CommitOptions{OmitGroupInfo: true}
		benchFloorLoop(b, nil, func() {
			if _, err := g.SelfUpdate(opts); err != nil {
				b.Fatal(err)
			}
			if err := g.DiscardPendingCommit(); err != nil {
				b.Fatal(err)
			}
		}, func() { times(st.pathLen, p.seal, p.derive)(); p.derive(); times(2, p.sign)() })
	})
}

// BenchmarkFloorProcessCommit: the committer's sibling processes a commit
// with a path in a full tree of N.
func BenchmarkFloorProcessCommit(b *testing.B) {
	benchForSizes(b, func(b *testing.B, n int) {
		st := benchFullGroup(b, n)
		m := loadWarm(b, st.committer)
		res, err := m.SelfUpdate(&CommitOptions{OmitGroupInfo: true})
		if err != nil {
			b.Fatal(err)
		}
		p := newBenchPrims(b, 512, 0)
		var g *Group
		benchFloorLoop(b, func() {
			g = loadWarm(b, st.receiver)
			runtime.GC()
		}, func() {
			if _, err := g.ProcessMessage(res.Message); err != nil {
				b.Fatal(err)
			}
		}, func() { p.open(); times(st.pathLen, p.derive)(); times(2, p.verify)() })
	})
}

// BenchmarkFloorCreateAndAdd1000: every core creates groups and adds 999
// members to each in one commit (Welcome included). ns/op is per group
// over all cores; the floor is measured after the timed loop, one floor
// per core at once, and x-floor compares the time per group on one core.
func BenchmarkFloorCreateAndAdd1000(b *testing.B) {
	if scSuite != MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 {
		b.Skip("floors are measured for suite 1")
	}
	const n = 1000
	kps, _ := benchKeyPackages(b, n-1)
	s, _ := NewSigner(scSuite, []byte("creator"))
	procs := runtime.GOMAXPROCS(0)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g, err := CreateGroup(scSuite, nil, s, nil)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := g.AddMembers(kps, nil); err != nil {
				b.Error(err)
				return
			}
			if _, err := g.MergePendingCommit(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	opCPU := processCPU() - c0
	p := newBenchPrims(b, 512, 0)
	var wg sync.WaitGroup
	c1 := processCPU()
	start := time.Now()
	for range procs {
		wg.Go(times(n-1, p.verify, p.verify, p.seal))
	}
	wg.Wait()
	floorTime, floorCPU := time.Since(start), processCPU()-c1
	b.ReportMetric(float64(procs), "cores")
	reportFloor(b, benchTimedNs(b)*float64(procs), float64(floorTime.Nanoseconds()))
	b.ReportMetric((float64(opCPU)/float64(b.N))/(float64(floorCPU)/float64(procs)), "cpu-x-floor")
	b.ReportMetric(float64(opCPU.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkFloorProtect: a member encrypts a 1 KiB application message in
// a full tree of N.
func BenchmarkFloorProtect(b *testing.B) {
	benchForSizes(b, func(b *testing.B, n int) {
		if n == 1000 {
			b.Skip("N=10 and N=10000 show whether it is flat")
		}
		g := loadWarm(b, benchFullGroup(b, n).committer)
		msg := make([]byte, 1024)
		p := newBenchPrims(b, len(msg)+128, len(msg))
		b.SetBytes(int64(len(msg)))
		benchFloorLoop(b, nil, func() {
			if _, err := g.Protect(msg, nil); err != nil {
				b.Fatal(err)
			}
		}, func() { p.sign(); p.gcmSeal(); p.gcmSmall(); times(5, p.expand)() })
	})
}

// BenchmarkFloorUnprotect: a member decrypts and verifies 1 KiB
// application messages in a full tree of N.
func BenchmarkFloorUnprotect(b *testing.B) {
	benchForSizes(b, func(b *testing.B, n int) {
		if n == 1000 {
			b.Skip("N=10 and N=10000 show whether it is flat")
		}
		st := benchFullGroup(b, n)
		sender := loadWarm(b, st.committer)
		g := loadWarm(b, st.receiver)
		msg := make([]byte, 1024)
		p := newBenchPrims(b, len(msg)+128, len(msg))
		var ct []byte
		b.SetBytes(int64(len(msg)))
		benchFloorLoop(b, func() {
			var err error
			if ct, err = sender.Protect(msg, nil); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if _, err := g.ProcessMessage(ct); err != nil {
				b.Fatal(err)
			}
		}, func() { p.verify(); p.gcmOpen(); p.gcmSmall(); times(5, p.expand)() })
	})
}
