package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"testing"
)

// The tree caches (tree hashes, resolutions, key index) must always equal
// a recomputation from scratch: after every change, in clones, and after
// operations that fail.

// checkTreeCaches fails the test if t's caches differ from a recomputation
// or if its tree hash differs from that of a fresh parse of its encoding.
func checkTreeCaches(tb testing.TB, what string, s Suite, t *RatchetTree) {
	tb.Helper()
	if x, ok := t.checkCaches(s); !ok {
		tb.Fatalf("%s: cache of node %d (or the key index) differs from a recomputation", what, x)
	}
	fresh, err := ParseRatchetTree(t.Marshal())
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(fresh.TreeHash(s), t.TreeHash(s)) {
		tb.Fatalf("%s: cached tree hash differs from that of a fresh tree", what)
	}
	for x := range t.Width() {
		if !equalNodes(fresh.Resolution(NodeIndex(x)), t.Resolution(NodeIndex(x))) {
			tb.Fatalf("%s: resolution of node %d differs from that of a fresh tree", what, x)
		}
	}
}

func treeCacheSuite(t *testing.T) Suite {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randIntn(tb testing.TB, n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		tb.Fatal(err)
	}
	return int(v.Int64())
}

// TestTreeCachesFollowChanges applies random adds, updates, removes and
// paths to a tree whose caches are in use, checking them after each step,
// and checks that a clone changed afterwards leaves the original alone.
func TestTreeCachesFollowChanges(t *testing.T) {
	s := treeCacheSuite(t)
	g := benchTreeNewGroup(t, s, 6, true)
	tree := g.tree
	sig := map[LeafIndex][]byte{}
	for i, p := range g.sigPriv {
		sig[LeafIndex(i)] = p
	}
	tree.warm(s)
	checkTreeCaches(t, "start", s, tree)
	for step := range 60 {
		before := tree.Marshal()
		saved := tree.Clone()
		members := tree.Members()
		pick := members[randIntn(t, len(members))]
		var what string
		switch op := randIntn(t, 4); {
		case op == 0 || len(members) < 3:
			ln, _, sigPriv := treekemNewLeaf(t, s, fmt.Sprint("new ", step))
			l, err := tree.AddLeaf(ln)
			if err != nil {
				t.Fatal(err)
			}
			sig[l] = sigPriv
			what = fmt.Sprintf("step %d: add at %d", step, l)
		case op == 1:
			if err := tree.RemoveLeaf(pick); err != nil {
				t.Fatal(err)
			}
			what = fmt.Sprintf("step %d: remove %d", step, pick)
		case op == 2:
			ln, _, sigPriv := treekemNewLeaf(t, s, fmt.Sprint("update ", step))
			if err := tree.UpdateLeaf(pick, ln); err != nil {
				t.Fatal(err)
			}
			sig[pick] = sigPriv
			what = fmt.Sprintf("step %d: update %d", step, pick)
		default:
			if _, err := tree.GeneratePath(s, pick, tree.LeafNode(pick), sig[pick], []byte("group")); err != nil {
				t.Fatal(err)
			}
			what = fmt.Sprintf("step %d: path of %d", step, pick)
		}
		checkTreeCaches(t, what, s, tree)
		if !bytes.Equal(saved.Marshal(), before) {
			t.Fatalf("%s: changed a clone taken before it", what)
		}
		checkTreeCaches(t, what+" (the clone taken before)", s, saved)
	}
}

// TestTreeBlankSubtreesMarked: warm caches the empty resolution of every
// wholly blank subtree (the right part of a tree of 5 members in 8 leaves,
// and a removed member's leaf) and of nothing else, and the marks stay
// right as members are added into the blank part and removed again.
func TestTreeBlankSubtreesMarked(t *testing.T) {
	s := treeCacheSuite(t)
	g := benchTreeNewGroup(t, s, 5, true)
	tree := g.tree
	if err := tree.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	tree.warm(s)
	var blank func(x NodeIndex) bool
	blank = func(x NodeIndex) bool {
		if !tree.nodes.at(x).Blank() {
			return false
		}
		return IsLeaf(x) || (blank(Left(x)) && blank(Right(x)))
	}
	marked := 0
	for x := range NodeIndex(tree.Width()) {
		e := tree.nodes.entry(x)
		if blank(x) {
			if !e.resOK || len(e.res) != 0 {
				t.Fatalf("blank subtree at node %d not marked", x)
			}
			marked++
		}
	}
	if marked < 5 { // leaves 1, 5, 6, 7 and the parent of 6 and 7
		t.Fatalf("%d blank subtrees marked", marked)
	}
	checkTreeCaches(t, "marked", s, tree)
	c := tree.Clone()
	if !c.blanksMarked {
		t.Fatal("a clone lost the marks")
	}
	for i := range 4 {
		ln, _, _ := treekemNewLeaf(t, s, fmt.Sprint("later ", i))
		if _, err := c.AddLeaf(ln); err != nil {
			t.Fatal(err)
		}
		checkTreeCaches(t, fmt.Sprintf("add %d", i), s, c)
	}
	for _, l := range []LeafIndex{7, 6, 5, 4} {
		if err := c.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
		checkTreeCaches(t, fmt.Sprintf("remove %d", l), s, c)
	}
	checkTreeCaches(t, "the original after its clone changed", s, tree)
}

// TestTreeCachesAfterRefusedPath merges tampered UpdatePaths into a tree
// with warm caches: each is refused after the tree was changed and undone,
// and the caches still match a recomputation.
func TestTreeCachesAfterRefusedPath(t *testing.T) {
	s := treeCacheSuite(t)
	g := benchTreeNewGroup(t, s, 7, true)
	sent := g.tree.Clone()
	pu, err := sent.GeneratePath(s, 2, sent.LeafNode(2), g.sigPriv[2], []byte("group"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := sent.EncryptPath(s, pu, []byte("context"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tree := g.tree.Clone()
	tree.warm(s)
	hash := tree.TreeHash(s)
	for name, edit := range map[string]func(*UpdatePath){
		// Both fail after the path was set: the parent hash check and the
		// key uniqueness check.
		"node key changed":    func(p *UpdatePath) { p.Nodes[0].EncryptionKey[0] ^= 1 },
		"node key of another": func(p *UpdatePath) { p.Nodes[0].EncryptionKey = bytes.Clone(tree.LeafNode(0).EncryptionKey) },
		"node keys swapped": func(p *UpdatePath) {
			p.Nodes[0].EncryptionKey, p.Nodes[1].EncryptionKey = p.Nodes[1].EncryptionKey, p.Nodes[0].EncryptionKey
		},
		"leaf parent hash wrong": func(p *UpdatePath) { p.LeafNode.ParentHash = make([]byte, 32) },
	} {
		p, err := ParseUpdatePath(good.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		edit(p)
		if err := tree.MergeUpdatePath(s, 2, p, []byte("group")); err == nil {
			t.Fatalf("%s: tampered path merged", name)
		}
		checkTreeCaches(t, name, s, tree)
		if !bytes.Equal(tree.TreeHash(s), hash) {
			t.Fatalf("%s: tree hash changed by a refused path", name)
		}
	}
	if err := tree.MergeUpdatePath(s, 2, good, []byte("group")); err != nil {
		t.Fatal(err)
	}
	checkTreeCaches(t, "good path", s, tree)
	if !bytes.Equal(tree.TreeHash(s), sent.TreeHash(s)) {
		t.Fatal("receiver's tree hash differs from the sender's")
	}
}

// randTestFailAfter makes the n-th and later draws from the package's
// randomness source fail.
func randTestFailAfter(t *testing.T, n int) {
	t.Helper()
	old := randSource
	t.Cleanup(func() { randSource = old })
	randSource = &randTestCountdown{left: n - 1, ok: old}
}

type randTestCountdown struct {
	left int
	ok   interface{ Read([]byte) (int, error) }
}

func (r *randTestCountdown) Read(b []byte) (int, error) {
	if r.left <= 0 {
		return 0, errRandTestBroken
	}
	r.left--
	return r.ok.Read(b)
}

// checkGroupCaches checks a group's tree caches and that its GroupContext
// has the tree hash of a fresh parse of its tree.
func checkGroupCaches(t *testing.T, what string, g *Group) {
	t.Helper()
	checkTreeCaches(t, what, g.suite, g.tree)
	fresh, err := ParseRatchetTree(g.RatchetTree())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh.TreeHash(g.suite), g.ctx.TreeHash) {
		t.Fatalf("%s: the group's tree hash is not that of its tree", what)
	}
}

// TestFailedCommitLeavesCachesConsistent makes a commit fail at each of its
// random draws in turn: each failure leaves the group unchanged and its
// caches equal to a recomputation, and the commit then succeeds.
func TestFailedCommitLeavesCachesConsistent(t *testing.T) {
	sg, a, _, _ := scThree(t, Config{})
	checkGroupCaches(t, "start", a.g)
	for n := 1; ; n++ {
		if n > 20 {
			t.Fatal("commit still fails after 20 draws")
		}
		before, _ := a.g.MarshalBinary()
		t.Run(fmt.Sprint("draw ", n), func(t *testing.T) { randTestFailAfter(t, n); _, _ = a.g.SelfUpdate(nil) })
		if a.g.HasPendingCommit() {
			res := a.g.pending.result
			checkGroupCaches(t, "pending commit", a.g.pending.state)
			sg.commitFrom(a, res)
			break
		}
		after, _ := a.g.MarshalBinary()
		if !bytes.Equal(before, after) {
			t.Fatalf("commit failing at draw %d changed the group", n)
		}
		checkGroupCaches(t, fmt.Sprintf("commit failing at draw %d", n), a.g)
	}
	sg.agree()
	for _, m := range sg.members {
		checkGroupCaches(t, "after the commit", m.g)
	}
}

// TestFailedProcessLeavesCachesConsistent has a member refuse commits that
// fail only after their path was merged into its next tree (a wrong
// confirmation tag, a path secret it cannot decrypt): its group and caches
// are unchanged, and the honest commit is then processed.
func TestFailedProcessLeavesCachesConsistent(t *testing.T) {
	sg, a, b, _ := scThree(t, Config{PublicHandshake: true})
	res, err := b.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMLSMessage(res.Message)
	if err != nil {
		t.Fatal(err)
	}
	commit := m.PublicMessage.Content.Commit
	broken, err := ParseCommit(commit.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	for i := range broken.Path.Nodes {
		for j := range broken.Path.Nodes[i].EncryptedPathSecret {
			broken.Path.Nodes[i].EncryptedPathSecret[j].Ciphertext[0] ^= 1
		}
	}
	a.g.tree.warm(a.g.suite)
	for name, msg := range map[string][]byte{
		"bad confirmation tag": forgeCommit(t, b.g, commit),
		"undecryptable path":   forgeCommit(t, b.g, broken),
	} {
		before, _ := a.g.MarshalBinary()
		if _, err := a.g.ProcessMessage(msg); err == nil {
			t.Fatalf("%s: accepted", name)
		}
		after, _ := a.g.MarshalBinary()
		if !bytes.Equal(before, after) {
			t.Fatalf("%s: refused commit changed the group", name)
		}
		checkGroupCaches(t, name, a.g)
	}
	sg.commitFrom(b, res)
	sg.agree()
	checkGroupCaches(t, "after the honest commit", a.g)
}

// TestCommitOmitGroupInfo: with OmitGroupInfo a commit carries no GroupInfo,
// and the group still makes one on request.
func TestCommitOmitGroupInfo(t *testing.T) {
	sg, a, _, _ := scThree(t, Config{})
	res, err := a.g.SelfUpdate(&CommitOptions{OmitGroupInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.GroupInfo != nil {
		t.Fatal("GroupInfo made despite OmitGroupInfo")
	}
	sg.commitFrom(a, res)
	sg.agree()
	gi, err := a.g.GroupInfo()
	if err != nil || len(gi) == 0 {
		t.Fatalf("GroupInfo after the merge: %v", err)
	}
	res, err = a.g.SelfUpdate(nil)
	if err != nil || res.GroupInfo == nil {
		t.Fatalf("default commit without GroupInfo: %v", err)
	}
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
}

// TestParallelSeals: every call runs once and writes its own slot, and the
// error returned is that of the lowest failing call.
func TestParallelSeals(t *testing.T) {
	for _, n := range []int{0, 1, sealsPerWorker, 3*sealsPerWorker + 1, 200} {
		out := make([]int, n)
		if err := parallelSeals(n, func(i int) error { out[i] += i + 1; return nil }); err != nil {
			t.Fatal(err)
		}
		for i, v := range out {
			if v != i+1 {
				t.Fatalf("n=%d: slot %d = %d", n, i, v)
			}
		}
	}
	errAt := func(i int) error { return fmt.Errorf("call %d", i) }
	err := parallelSeals(200, func(i int) error {
		if i == 57 || i == 130 {
			return errAt(i)
		}
		return nil
	})
	if err == nil || err.Error() != "call 57" {
		t.Fatalf("got %v, want the error of call 57", err)
	}
}

// TestWelcomeToManyJoiners: a Welcome sealed on several goroutines has each
// joiner's secrets in its place; all of them join and agree.
func TestWelcomeToManyJoiners(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 4*sealsPerWorker+3, false)
	sg.agree()
}

// TestSigningKeyParsedOnce: a Group expands its Ed25519 key on its first
// signature and reuses it; a discarded state wipes a parsed key of its own
// and leaves the live group's alone.
func TestSigningKeyParsedOnce(t *testing.T) {
	_, a, b, _ := scThree(t, Config{})
	if s, ok := a.g.suite.(*suite); !ok {
		t.Skipf("suite %v keeps no parsed key", a.g.suite.ID())
	} else if _, isEd := s.sig.(ed25519Scheme); !isEd {
		t.Skipf("suite %v signs without Ed25519: no parsed key to keep", a.g.suite.ID())
	}
	for i := range 2 {
		msg, err := a.g.Protect([]byte("hello"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.g.ProcessMessage(msg); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	k := a.g.signKey
	if k == nil || k.ed == nil {
		t.Fatal("no parsed signing key after two messages")
	}
	if _, err := a.g.Protect([]byte("again"), nil); err != nil || a.g.signKey != k {
		t.Fatalf("the key was parsed again (%v)", err)
	}
	ng := a.g.clone()
	ng.signKey = nil
	own := ng.signingKey()
	wipeDiscarded(ng, a.g)
	if own.ed != nil {
		t.Fatal("a discarded state kept its parsed key")
	}
	if k.ed == nil {
		t.Fatal("wiping a discarded state wiped the live group's key")
	}
}
