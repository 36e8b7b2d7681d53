package mls

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

type treeKEMVector struct {
	CipherSuite             CipherSuite `json:"cipher_suite"`
	GroupID                 hexBytes    `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	ConfirmedTranscriptHash hexBytes    `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes    `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          LeafIndex `json:"index"`
		EncryptionPriv hexBytes  `json:"encryption_priv"`
		SignaturePriv  hexBytes  `json:"signature_priv"`
		PathSecrets    []struct {
			Node       NodeIndex `json:"node"`
			PathSecret hexBytes  `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        LeafIndex  `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

// treekemContext returns the encoded provisional GroupContext of a vector
// for a tree hash.
func treekemContext(tc *treeKEMVector, treeHash []byte) []byte {
	gc := GroupContext{
		Version:                 MLS10,
		CipherSuite:             tc.CipherSuite,
		GroupID:                 tc.GroupID,
		Epoch:                   tc.Epoch,
		TreeHash:                treeHash,
		ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
		Extensions:              []Extension{},
	}
	return gc.Marshal()
}

func TestVectorsTreeKEM(t *testing.T) {
	runVectors(t, "treekem.json", func(t *testing.T, tc *treeKEMVector) {
		s := treeSuite(t, tc.CipherSuite)
		tree, err := ParseRatchetTree(tc.RatchetTree)
		if err != nil {
			t.Fatalf("ParseRatchetTree: %v", err)
		}
		if err := tree.Validate(s, tc.GroupID); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		// Import each member's keys; every path secret must give the
		// public key the tree holds.
		keys := map[LeafIndex]*TreePrivateKeys{}
		sigPrivs := map[LeafIndex][]byte{}
		for _, lp := range tc.LeavesPrivate {
			k := NewTreePrivateKeys(lp.Index, lp.EncryptionPriv)
			for _, ps := range lp.PathSecrets {
				if err := k.SetPathSecret(s, tree, ps.Node, ps.PathSecret); err != nil {
					t.Fatalf("leaf %d: SetPathSecret(%d): %v", lp.Index, ps.Node, err)
				}
			}
			keys[lp.Index] = k
			sigPrivs[lp.Index] = lp.SignaturePriv
		}
		for _, i := range tree.Members() {
			if keys[i] == nil {
				t.Fatalf("no private keys for member %d", i)
			}
		}

		for _, up := range tc.UpdatePaths {
			path, err := ParseUpdatePath(up.UpdatePath)
			if err != nil {
				t.Fatalf("ParseUpdatePath: %v", err)
			}
			after := tree.Clone()
			if err := after.MergeUpdatePath(s, up.Sender, path, tc.GroupID); err != nil {
				t.Fatalf("sender %d: MergeUpdatePath: %v", up.Sender, err)
			}
			if h := after.TreeHash(s); !bytes.Equal(h, up.TreeHashAfter) {
				t.Fatalf("sender %d: tree hash after = %x, want %x", up.Sender, h, up.TreeHashAfter)
			}
			if err := after.VerifyParentHashes(s); err != nil {
				t.Fatalf("sender %d: merged tree: %v", up.Sender, err)
			}
			ctx := treekemContext(tc, up.TreeHashAfter)
			for _, to := range tree.Members() {
				if to == up.Sender {
					continue
				}
				k := keys[to].Clone()
				commit, ps, err := k.decryptPath(s, after, up.Sender, path, ctx, nil)
				if err != nil {
					t.Fatalf("sender %d, receiver %d: %v", up.Sender, to, err)
				}
				if !bytes.Equal(commit, up.CommitSecret) {
					t.Errorf("sender %d, receiver %d: commit secret %x, want %x", up.Sender, to, commit, up.CommitSecret)
				}
				if !bytes.Equal(ps, up.PathSecrets[to]) {
					t.Errorf("sender %d, receiver %d: path secret %x, want %x", up.Sender, to, ps, up.PathSecrets[to])
				}
			}
			// A path bound to another group context must not decrypt.
			if len(tree.Members()) > 1 {
				to := tree.Members()[0]
				if to == up.Sender {
					to = tree.Members()[1]
				}
				bad := treekemContext(tc, append(bytes.Clone(up.TreeHashAfter), 0))
				if _, err := keys[to].Clone().DecryptPath(s, after, up.Sender, path, bad, nil); !errors.Is(err, ErrDecrypt) {
					t.Errorf("decrypt with wrong context: %v, want ErrDecrypt", err)
				}
			}

			// A fresh path from the same sender: every member agrees on its
			// commit secret.
			treekemRoundTrip(t, s, tree, keys, up.Sender, sigPrivs[up.Sender], tc)
		}
	})
}

// treekemRoundTrip generates an UpdatePath from `from` in a copy of tree and
// checks that every other member decrypts the same commit secret.
func treekemRoundTrip(t *testing.T, s Suite, tree *RatchetTree, keys map[LeafIndex]*TreePrivateKeys, from LeafIndex, sigPriv []byte, tc *treeKEMVector) {
	t.Helper()
	sent := tree.Clone()
	pu, err := sent.GeneratePath(s, from, tree.LeafNode(from), sigPriv, tc.GroupID)
	if err != nil {
		t.Fatalf("GeneratePath(%d): %v", from, err)
	}
	if err := sent.VerifyParentHashes(s); err != nil {
		t.Fatalf("tree after GeneratePath(%d): %v", from, err)
	}
	if err := sent.LeafNode(from).VerifySignature(s, tc.GroupID, from); err != nil {
		t.Fatalf("leaf after GeneratePath(%d): %v", from, err)
	}
	ctx := treekemContext(tc, sent.TreeHash(s))
	path, err := sent.EncryptPath(s, pu, ctx, nil)
	if err != nil {
		t.Fatalf("EncryptPath: %v", err)
	}
	// Through the wire encoding, as a receiver sees it.
	path, err = ParseUpdatePath(path.Marshal())
	if err != nil {
		t.Fatalf("ParseUpdatePath of own path: %v", err)
	}
	recv := tree.Clone()
	if err := recv.MergeUpdatePath(s, from, path, tc.GroupID); err != nil {
		t.Fatalf("MergeUpdatePath of own path: %v", err)
	}
	if !recv.Equal(sent) {
		t.Fatalf("receiver's tree differs from the sender's")
	}
	for _, to := range tree.Members() {
		if to == from {
			continue
		}
		k := keys[to].Clone()
		commit, err := k.DecryptPath(s, recv, from, path, ctx, nil)
		if err != nil {
			t.Fatalf("receiver %d of a fresh path from %d: %v", to, from, err)
		}
		if !bytes.Equal(commit, pu.CommitSecret) {
			t.Fatalf("receiver %d: commit secret %x, sender has %x", to, commit, pu.CommitSecret)
		}
		// The receiver now holds keys for every non-blank node above it
		// on the sender's path; the sender's keys agree with them.
		for x, priv := range k.Path {
			if sp, ok := pu.Keys.Path[x]; ok && !bytes.Equal(sp, priv) {
				t.Fatalf("receiver %d and sender disagree on the key of node %d", to, x)
			}
		}
	}
	pu.Wipe()
}

// treekemMember is one member of the in-memory groups of the TreeKEM tests.
type treekemMember struct {
	tree    *RatchetTree
	keys    *TreePrivateKeys
	sigPriv []byte
}

// treekemNewLeaf returns a key_package leaf and its private keys.
func treekemNewLeaf(t testing.TB, s Suite, id string) (*LeafNode, []byte, []byte) {
	t.Helper()
	sigPriv, sigPub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	encPriv, encPub, err := s.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ln := &LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  sigPub,
		Credential:    NewBasicCredential([]byte(id)),
		Capabilities: Capabilities{
			Versions:     []ProtocolVersion{MLS10},
			CipherSuites: []CipherSuite{s.ID()},
			Credentials:  []CredentialType{CredentialBasic},
		},
		Source:   LeafNodeSourceKeyPackage,
		Lifetime: &Lifetime{NotAfter: 1<<63 - 1},
	}
	if err := ln.Sign(s, sigPriv, nil, 0); err != nil {
		t.Fatal(err)
	}
	return ln, encPriv, sigPriv
}

// TestTreeKEMCommits runs a small group through commits that add, remove
// and leave unmerged leaves, with new members excluded from the path and
// joining from the path secret a Welcome would carry. After every commit
// all members must hold the same tree, which validates, and the same commit
// secret.
func TestTreeKEMCommits(t *testing.T) {
	for _, cs := range SupportedSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			s, err := LookupSuite(cs)
			if err != nil {
				t.Fatal(err)
			}
			treekemScenario(t, s)
		})
	}
}

func treekemScenario(t *testing.T, s Suite) {
	groupID := []byte("treekem group")
	epoch := uint64(0)
	members := map[LeafIndex]*treekemMember{}
	aLeaf, aEnc, aSig := treekemNewLeaf(t, s, "a")
	members[0] = &treekemMember{tree: NewRatchetTree(aLeaf), keys: NewTreePrivateKeys(0, aEnc), sigPriv: aSig}

	type add struct {
		leaf          *LeafNode
		enc, sig      []byte
		wantIndex     LeafIndex
		wantPathFound bool
	}
	// commit applies removes and adds from committer to every member's
	// tree, then, if withPath, a fresh path, and checks agreement.
	commit := func(committer LeafIndex, removes []LeafIndex, adds []add, withPath bool) {
		t.Helper()
		epoch++
		for _, r := range removes {
			for _, m := range members {
				if err := m.tree.RemoveLeaf(r); err != nil {
					t.Fatalf("epoch %d: RemoveLeaf(%d): %v", epoch, r, err)
				}
				m.keys.Prune(m.tree)
			}
			members[r].keys.Wipe()
			delete(members, r)
		}
		var added []LeafIndex
		for _, a := range adds {
			var idx LeafIndex
			for _, m := range members {
				i, err := m.tree.AddLeaf(a.leaf.Clone())
				if err != nil {
					t.Fatal(err)
				}
				idx = i
			}
			if idx != a.wantIndex {
				t.Fatalf("epoch %d: new member at leaf %d, want %d", epoch, idx, a.wantIndex)
			}
			added = append(added, idx)
		}
		sender := members[committer]
		// The joiners' tree is the committer's after the commit.
		if !withPath {
			for i, a := range adds {
				m := &treekemMember{tree: sender.tree.Clone(), keys: NewTreePrivateKeys(added[i], a.enc), sigPriv: a.sig}
				members[added[i]] = m
			}
			return
		}
		pu, err := sender.tree.GeneratePath(s, committer, sender.tree.LeafNode(committer), sender.sigPriv, groupID)
		if err != nil {
			t.Fatalf("epoch %d: GeneratePath: %v", epoch, err)
		}
		gc := GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: groupID, Epoch: epoch, TreeHash: sender.tree.TreeHash(s), Extensions: []Extension{}}
		ctx := gc.Marshal()
		path, err := sender.tree.EncryptPath(s, pu, ctx, added)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range pu.Nodes {
			res := sender.tree.appendResolution(nil, treeCopathChild(x, committer), added)
			if len(path.Nodes[i].EncryptedPathSecret) != len(res) {
				t.Fatalf("epoch %d: node %d has %d ciphertexts for a resolution of %d", epoch, x, len(path.Nodes[i].EncryptedPathSecret), len(res))
			}
		}
		for idx, m := range members {
			if idx == committer {
				continue
			}
			if err := m.tree.MergeUpdatePath(s, committer, path, groupID); err != nil {
				t.Fatalf("epoch %d: member %d: MergeUpdatePath: %v", epoch, idx, err)
			}
			cs, err := m.keys.DecryptPath(s, m.tree, committer, path, ctx, added)
			if err != nil {
				t.Fatalf("epoch %d: member %d: DecryptPath: %v", epoch, idx, err)
			}
			if !bytes.Equal(cs, pu.CommitSecret) {
				t.Fatalf("epoch %d: member %d has another commit secret", epoch, idx)
			}
		}
		sender.keys.Wipe()
		sender.keys = pu.Keys
		for i, a := range adds {
			m := &treekemMember{tree: sender.tree.Clone(), keys: NewTreePrivateKeys(added[i], a.enc), sigPriv: a.sig}
			x, ps, ok := pu.PathSecretFor(added[i])
			if !ok {
				t.Fatalf("epoch %d: no path secret for new member %d", epoch, added[i])
			}
			cs, err := m.keys.ImportPathSecret(s, m.tree, x, ps)
			if err != nil {
				t.Fatalf("epoch %d: new member %d: ImportPathSecret: %v", epoch, added[i], err)
			}
			if !bytes.Equal(cs, pu.CommitSecret) {
				t.Fatalf("epoch %d: new member %d has another commit secret", epoch, added[i])
			}
			members[added[i]] = m
		}
		pu.Wipe()
		for idx, m := range members {
			if !m.tree.Equal(sender.tree) {
				t.Fatalf("epoch %d: member %d's tree differs from the committer's", epoch, idx)
			}
		}
		if err := sender.tree.Validate(s, groupID); err != nil {
			t.Fatalf("epoch %d: tree: %v", epoch, err)
		}
	}

	b, bEnc, bSig := treekemNewLeaf(t, s, "b")
	c, cEnc, cSig := treekemNewLeaf(t, s, "c")
	d, dEnc, dSig := treekemNewLeaf(t, s, "d")
	e, eEnc, eSig := treekemNewLeaf(t, s, "e")
	g, gEnc, gSig := treekemNewLeaf(t, s, "g")
	// 1. A adds B, C, D: every copath resolution is made of new members,
	// so nothing is encrypted; the joiners use their path secrets.
	commit(0, nil, []add{{leaf: b, enc: bEnc, sig: bSig, wantIndex: 1}, {leaf: c, enc: cEnc, sig: cSig, wantIndex: 2}, {leaf: d, enc: dEnc, sig: dSig, wantIndex: 3}}, true)
	// 2. C removes B and adds E, who takes B's leaf.
	commit(2, []LeafIndex{1}, []add{{leaf: e, enc: eEnc, sig: eSig, wantIndex: 1}}, true)
	// 3. A removes D.
	commit(0, []LeafIndex{3}, nil, true)
	// 4. C adds G without a path: G is unmerged at nodes 5 and 3.
	commit(2, nil, []add{{leaf: g, enc: gEnc, sig: gSig, wantIndex: 3}}, false)
	if p := members[0].tree.ParentNode(3); p == nil || len(p.UnmergedLeaves) != 1 || p.UnmergedLeaves[0] != 3 {
		t.Fatalf("leaf 3 not unmerged at the root: %+v", p)
	}
	// 5. E commits: G, unmerged, gets the path secret through its leaf key.
	commit(1, nil, nil, true)
	// 6. G commits, using the keys it got in epoch 5.
	commit(3, nil, nil, true)
	// 7. Everyone but A leaves; the tree shrinks to one leaf.
	commit(0, []LeafIndex{1, 2, 3}, nil, true)
	if n := members[0].tree.NumLeaves(); n != 1 {
		t.Fatalf("tree has %d leaves with one member", n)
	}
	if len(members[0].keys.Path) != 0 {
		t.Fatalf("a lone member holds %d parent keys", len(members[0].keys.Path))
	}
}

func TestTreePrivateKeysRoundTrip(t *testing.T) {
	k := NewTreePrivateKeys(5, []byte{1, 2, 3})
	k.Path[11] = []byte{4}
	k.Path[15] = []byte{5, 6}
	b := k.Marshal()
	got, err := ParseTreePrivateKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), b) || got.Leaf != 5 || len(got.Path) != 2 {
		t.Fatalf("round trip differs: %+v", got)
	}
	k.Wipe()
	if k.EncryptionKey != nil || len(k.Path) != 0 {
		t.Fatal("Wipe left keys")
	}
	for name, bad := range map[string][]byte{
		"leaf node in path": append(AppendOpaque(AppendUint32(nil, 1), []byte{1}), AppendVector(nil, func(b []byte) []byte {
			return AppendOpaque(AppendUint32(b, 2), []byte{1})
		})...),
		"truncated": b[:len(b)-1],
		"unsorted": append(AppendOpaque(AppendUint32(nil, 1), []byte{1}), AppendVector(nil, func(b []byte) []byte {
			b = AppendOpaque(AppendUint32(b, 5), []byte{1})
			return AppendOpaque(AppendUint32(b, 3), []byte{1})
		})...),
	} {
		if _, err := ParseTreePrivateKeys(bad); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: %v, want ErrDecode", name, err)
		}
	}
}

func FuzzTreePrivateKeys(f *testing.F) {
	k := NewTreePrivateKeys(2, []byte{1, 2, 3})
	k.Path[5] = []byte{9}
	f.Add(k.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseTreePrivateKeys(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		if !bytes.Equal(k.Marshal(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// TestTreeKEMMergeRejects checks that a tampered UpdatePath is refused and
// leaves the tree as it was.
func TestTreeKEMMergeRejects(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	groupID := []byte("group")
	g := benchTreeNewGroup(t, s, 5, true)
	sent := g.tree.Clone()
	pu, err := sent.GeneratePath(s, 2, sent.LeafNode(2), g.sigPriv[2], groupID)
	if err != nil {
		t.Fatal(err)
	}
	ctx := []byte("context")
	good, err := sent.EncryptPath(s, pu, ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	clonePath := func() *UpdatePath {
		p, err := ParseUpdatePath(good.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct {
		sender LeafIndex
		edit   func(*UpdatePath)
		group  []byte
	}{
		"node key changed": {2, func(p *UpdatePath) { p.Nodes[1].EncryptionKey[0] ^= 1 }, groupID},
		"node dropped":     {2, func(p *UpdatePath) { p.Nodes = p.Nodes[:len(p.Nodes)-1] }, groupID},
		"leaf changed":     {2, func(p *UpdatePath) { p.LeafNode.Credential.Identity = []byte("mallory") }, groupID},
		"other group":      {2, func(*UpdatePath) {}, []byte("other")},
		"other sender":     {3, func(*UpdatePath) {}, groupID},
		"blank sender":     {6, func(*UpdatePath) {}, groupID},
		"update source":    {2, func(p *UpdatePath) { p.LeafNode.Source = LeafNodeSourceUpdate }, groupID},
	} {
		tree := g.tree.Clone()
		p := clonePath()
		tc.edit(p)
		if err := tree.MergeUpdatePath(s, tc.sender, p, tc.group); !errors.Is(err, ErrInvalidTree) {
			t.Errorf("%s: MergeUpdatePath = %v, want ErrInvalidTree", name, err)
		}
		if !tree.Equal(g.tree) {
			t.Errorf("%s: tree changed by a refused path", name)
		}
	}
	tree := g.tree.Clone()
	if err := tree.MergeUpdatePath(s, 2, clonePath(), groupID); err != nil {
		t.Fatalf("good path: %v", err)
	}
	// Decrypting with a wrong private key fails cleanly.
	k := g.keys[0].Clone()
	k.Path[1] = bytes.Clone(g.keys[1].EncryptionKey)
	if _, err := k.DecryptPath(s, tree, 2, good, ctx, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("DecryptPath with a wrong leaf key = %v, want ErrDecrypt", err)
	}
	if _, err := g.keys[2].Clone().DecryptPath(s, tree, 2, good, ctx, nil); !errors.Is(err, ErrInvalidTree) {
		t.Errorf("DecryptPath of own path = %v, want ErrInvalidTree", err)
	}
}

// TestTreeKEMSparseGroup sends a path in a group of 40 members whose
// parents are all blank, so the path secret is encrypted to each member's
// leaf (on several goroutines); every member must get the commit secret.
func TestTreeKEMSparseGroup(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	groupID := []byte("group")
	g := benchTreeNewGroup(t, s, 40, false)
	sent := g.tree.Clone()
	pu, err := sent.GeneratePath(s, 7, sent.LeafNode(7), g.sigPriv[7], groupID)
	if err != nil {
		t.Fatal(err)
	}
	ctx := []byte("context")
	path, err := sent.EncryptPath(s, pu, ctx, []LeafIndex{39})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range path.Nodes {
		total += len(n.EncryptedPathSecret)
	}
	if total != 38 {
		t.Fatalf("%d encryptions, want 38 (every member but the sender and the excluded one)", total)
	}
	recv := g.tree.Clone()
	if err := recv.MergeUpdatePath(s, 7, path, groupID); err != nil {
		t.Fatal(err)
	}
	for i, k := range g.keys {
		if i == 7 || i == 39 {
			continue
		}
		cs, err := k.Clone().DecryptPath(s, recv, 7, path, ctx, []LeafIndex{39})
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if !bytes.Equal(cs, pu.CommitSecret) {
			t.Fatalf("member %d has another commit secret", i)
		}
	}
}

// TestTreeKEMMergeRejectsDuplicateKeys builds validly signed paths that
// reuse a key already in the tree; the merge must refuse them.
func TestTreeKEMMergeRejectsDuplicateKeys(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	groupID := []byte("group")
	g := benchTreeNewGroup(t, s, 5, true)
	// forge sends a path from leaf 2 after edit changes the sent tree; the
	// parent hashes and the leaf signature are redone to match.
	forge := func(edit func(sent *RatchetTree, pu *PathUpdate) []byte) *UpdatePath {
		sent := g.tree.Clone()
		pu, err := sent.GeneratePath(s, 2, sent.LeafNode(2), g.sigPriv[2], groupID)
		if err != nil {
			t.Fatal(err)
		}
		sigPriv := edit(sent, pu)
		ln := sent.LeafNode(2)
		ln.ParentHash = sent.setPathParentHashes(s, 2, pu.Nodes)
		if err := ln.Sign(s, sigPriv, groupID, 2); err != nil {
			t.Fatal(err)
		}
		up := &UpdatePath{LeafNode: *ln.Clone()}
		for _, x := range pu.Nodes {
			up.Nodes = append(up.Nodes, UpdatePathNode{EncryptionKey: bytes.Clone(sent.ParentNode(x).EncryptionKey)})
		}
		return up
	}
	for name, edit := range map[string]func(*RatchetTree, *PathUpdate) []byte{
		"path node reuses a leaf key": func(sent *RatchetTree, pu *PathUpdate) []byte {
			sent.ParentNode(pu.Nodes[0]).EncryptionKey = bytes.Clone(sent.LeafNode(0).EncryptionKey)
			return g.sigPriv[2]
		},
		"leaf reuses a parent key": func(sent *RatchetTree, pu *PathUpdate) []byte {
			sent.LeafNode(2).EncryptionKey = bytes.Clone(sent.ParentNode(1).EncryptionKey)
			return g.sigPriv[2]
		},
		"leaf reuses a signature key": func(sent *RatchetTree, pu *PathUpdate) []byte {
			sent.LeafNode(2).SignatureKey = bytes.Clone(sent.LeafNode(4).SignatureKey)
			return g.sigPriv[4]
		},
	} {
		tree := g.tree.Clone()
		err := tree.MergeUpdatePath(s, 2, forge(edit), groupID)
		if !errors.Is(err, ErrInvalidTree) || !strings.Contains(err.Error(), "share") {
			t.Errorf("%s: MergeUpdatePath = %v, want ErrInvalidTree", name, err)
		}
		if !tree.Equal(g.tree) {
			t.Errorf("%s: tree changed by a refused path", name)
		}
	}
	// The same forging without a change is accepted: the checks above fail
	// for the duplicate, not for the forging.
	tree := g.tree.Clone()
	if err := tree.MergeUpdatePath(s, 2, forge(func(*RatchetTree, *PathUpdate) []byte { return g.sigPriv[2] }), groupID); err != nil {
		t.Fatalf("unchanged forged path: %v", err)
	}
}
