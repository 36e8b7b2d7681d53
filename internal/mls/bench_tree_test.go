package mls

import (
	"crypto/rand"
	"fmt"
	"testing"
)

// benchTreeGroup is a group built directly, without running commits: n
// members in the leftmost leaves, and, if full, a key pair in every parent
// node whose subtree holds a member, with each member holding the private
// keys of its direct path.
type benchTreeGroup struct {
	s       Suite
	tree    *RatchetTree
	keys    []*TreePrivateKeys
	sigPriv [][]byte
}

func benchTreeNewGroup(b testing.TB, s Suite, n int, full bool) *benchTreeGroup {
	b.Helper()
	g := &benchTreeGroup{s: s}
	first, encPriv, sigPriv := treekemNewLeaf(b, s, "member 0")
	g.tree = NewRatchetTree(first)
	g.keys = append(g.keys, NewTreePrivateKeys(0, encPriv))
	g.sigPriv = append(g.sigPriv, sigPriv)
	for i := 1; i < n; i++ {
		ln, encPriv, sigPriv := treekemNewLeaf(b, s, fmt.Sprint("member ", i))
		idx, err := g.tree.AddLeaf(ln)
		if err != nil {
			b.Fatal(err)
		}
		g.keys = append(g.keys, NewTreePrivateKeys(idx, encPriv))
		g.sigPriv = append(g.sigPriv, sigPriv)
	}
	if !full {
		return g
	}
	for x := range g.tree.Width() {
		x := NodeIndex(x)
		if IsLeaf(x) || g.tree.resolutionEmpty(x) {
			continue
		}
		secret := make([]byte, s.HashSize())
		if _, err := rand.Read(secret); err != nil {
			b.Fatal(err)
		}
		priv, pub, err := deriveNodeKeyPair(s, secret)
		if err != nil {
			b.Fatal(err)
		}
		g.tree.setNode(x, Node{Parent: &ParentNode{EncryptionKey: pub, UnmergedLeaves: []LeafIndex{}}})
		for _, k := range g.keys {
			if treeIsBelow(k.Leaf.Node(), x) {
				k.Path[x] = priv
			}
		}
	}
	return g
}

func benchTreeSuite(b *testing.B) Suite {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkTreeHash hashes a full tree of 1000 members (1024 leaves) from
// scratch: the cached hashes are dropped before each round.
func BenchmarkTreeHash(b *testing.B) {
	s := benchTreeSuite(b)
	g := benchTreeNewGroup(b, s, 1000, true)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g.tree.hashSuite = 0 // not a suite: hashesFor drops every hash
		g.tree.TreeHash(s)
	}
}

// BenchmarkUpdatePath measures a committer creating an UpdatePath (fresh
// keys, parent hashes, signature, tree hash, encryption) and a member
// processing it (merge, parent hash check, signature check, tree hash,
// decryption, derivation), in a full tree (every parent set: one
// encryption per copath node) and a sparse one (every parent blank: one
// encryption per other member).
func BenchmarkUpdatePath(b *testing.B) {
	s := benchTreeSuite(b)
	groupID := []byte("bench group")
	for _, full := range []bool{true, false} {
		for _, n := range []int{10, 100, 1000} {
			shape := "sparse"
			if full {
				shape = "full"
			}
			g := benchTreeNewGroup(b, s, n, full)
			context := func(t *RatchetTree) []byte {
				gc := GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: groupID, Epoch: 1, TreeHash: t.TreeHash(s), Extensions: []Extension{}}
				return gc.Marshal()
			}
			b.Run(fmt.Sprintf("create/%s/N=%d", shape, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					t := g.tree.Clone()
					b.StartTimer()
					pu, err := t.GeneratePath(s, 0, t.LeafNode(0), g.sigPriv[0], groupID)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := t.EncryptPath(s, pu, context(t), nil); err != nil {
						b.Fatal(err)
					}
					pu.Wipe()
				}
			})
			sent := g.tree.Clone()
			pu, err := sent.GeneratePath(s, 0, sent.LeafNode(0), g.sigPriv[0], groupID)
			if err != nil {
				b.Fatal(err)
			}
			path, err := sent.EncryptPath(s, pu, context(sent), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("process/%s/N=%d", shape, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					t := g.tree.Clone()
					k := g.keys[1].Clone()
					b.StartTimer()
					if err := t.MergeUpdatePath(s, 0, path, groupID); err != nil {
						b.Fatal(err)
					}
					cs, err := k.DecryptPath(s, t, 0, path, context(t), nil)
					if err != nil {
						b.Fatal(err)
					}
					if string(cs) != string(pu.CommitSecret) {
						b.Fatal("commit secrets differ")
					}
				}
			})
		}
	}
}
