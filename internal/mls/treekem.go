package mls

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
)

// This file is TreeKEM (RFC 9420 §7.4-§7.6): a committer refreshes the keys
// on its filtered direct path from a chain of path secrets and encrypts each
// path secret to the copath below it; every other member merges the new
// public keys, decrypts the one path secret it can reach, derives the rest
// of the chain and so the commit secret.
//
// The sender calls GeneratePath (which changes the tree) and then
// EncryptPath with the provisional GroupContext, which depends on the new
// tree hash. A receiver calls MergeUpdatePath, computes the same
// GroupContext, then TreePrivateKeys.DecryptPath.

// updatePathNodeLabel is the EncryptWithLabel label of path secrets.
const updatePathNodeLabel = "UpdatePathNode"

// TreePrivateKeys are one member's private keys of a ratchet tree: the HPKE
// key of its leaf and those of the parent nodes on its direct path that it
// knows. Delete it with Wipe once it is replaced.
type TreePrivateKeys struct {
	Leaf          LeafIndex
	EncryptionKey []byte               // the leaf's HPKE private key
	Path          map[NodeIndex][]byte // parent nodes' HPKE private keys
}

// NewTreePrivateKeys returns the keys of a member who knows only its
// leaf's private key, as after joining from a KeyPackage.
func NewTreePrivateKeys(leaf LeafIndex, encryptionKey []byte) *TreePrivateKeys {
	return &TreePrivateKeys{Leaf: leaf, EncryptionKey: bytes.Clone(encryptionKey), Path: map[NodeIndex][]byte{}}
}

// Clone returns a deep copy of k.
func (k *TreePrivateKeys) Clone() *TreePrivateKeys {
	c := NewTreePrivateKeys(k.Leaf, k.EncryptionKey)
	for x, v := range k.Path {
		c.Path[x] = bytes.Clone(v)
	}
	return c
}

// Wipe overwrites every key of k with zeros and forgets them.
func (k *TreePrivateKeys) Wipe() {
	clear(k.EncryptionKey)
	k.EncryptionKey = nil
	for x, v := range k.Path {
		clear(v)
		delete(k.Path, x)
	}
}

// privateKey returns the private key k holds for node x, or nil.
func (k *TreePrivateKeys) privateKey(x NodeIndex) []byte {
	if x == k.Leaf.Node() {
		return k.EncryptionKey
	}
	return k.Path[x]
}

// Prune forgets the keys of parent nodes that are blank in t or no longer
// on the leaf's direct path, as after proposals blank a path or truncate the
// tree.
func (k *TreePrivateKeys) Prune(t *RatchetTree) {
	onPath := DirectPath(k.Leaf.Node(), t.NumLeaves())
	for x, v := range k.Path {
		if !slices.Contains(onPath, x) || t.ParentNode(x) == nil {
			clear(v)
			delete(k.Path, x)
		}
	}
}

// Marshal encodes k for storage: leaf index, leaf key, then the parent
// keys in increasing node order.
func (k *TreePrivateKeys) Marshal() []byte {
	b := AppendUint32(nil, uint32(k.Leaf))
	b = AppendOpaque(b, k.EncryptionKey)
	nodes := slices.Sorted(maps.Keys(k.Path))
	return AppendVector(b, func(b []byte) []byte {
		for _, x := range nodes {
			b = AppendUint32(b, uint32(x))
			b = AppendOpaque(b, k.Path[x])
		}
		return b
	})
}

// ParseTreePrivateKeys decodes the encoding of Marshal.
func ParseTreePrivateKeys(b []byte) (*TreePrivateKeys, error) {
	r := NewReader(b)
	k := &TreePrivateKeys{Leaf: LeafIndex(r.Uint32()), EncryptionKey: r.Opaque(), Path: map[NodeIndex][]byte{}}
	next := uint64(0) // the least index the next entry may have (wider than a NodeIndex, so it cannot wrap)
	r.Vector(func(r *Reader) {
		x := NodeIndex(r.Uint32())
		v := r.Opaque()
		if r.Err() != nil {
			return
		}
		if uint64(x) < next || IsLeaf(x) {
			r.Fail("tree private keys: node %d out of order or a leaf", x)
			return
		}
		next = uint64(x) + 1
		k.Path[x] = v
	})
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing tree private keys: %w", err)
	}
	return k, nil
}

// deriveNodeKeyPair returns the key pair of a node from its path secret:
// DeriveKeyPair(DeriveSecret(path_secret, "node")).
func deriveNodeKeyPair(s Suite, pathSecret []byte) (priv, pub []byte, err error) {
	nodeSecret, err := DeriveSecret(s, pathSecret, "node")
	if err != nil {
		return nil, nil, err
	}
	defer clear(nodeSecret)
	return s.DeriveKeyPair(nodeSecret)
}

// SetPathSecret derives the key pair of parent node x from its path secret,
// checks that its public key is the one in t, and keeps the private key.
func (k *TreePrivateKeys) SetPathSecret(s Suite, t *RatchetTree, x NodeIndex, pathSecret []byte) error {
	p := t.ParentNode(x)
	if p == nil {
		return fmt.Errorf("%w: path secret for blank or leaf node %d", ErrInvalidTree, x)
	}
	if !treeIsBelow(k.Leaf.Node(), x) {
		return fmt.Errorf("%w: node %d is not above leaf %d", ErrInvalidTree, x, k.Leaf)
	}
	priv, pub, err := deriveNodeKeyPair(s, pathSecret)
	if err != nil {
		return fmt.Errorf("deriving key of node %d: %w", x, err)
	}
	if !bytes.Equal(pub, p.EncryptionKey) {
		clear(priv)
		return fmt.Errorf("%w: path secret gives another public key for node %d", ErrInvalidTree, x)
	}
	if old := k.Path[x]; old != nil {
		clear(old)
	}
	k.Path[x] = priv
	return nil
}

// ImportPathSecret sets the keys of node x, a parent on the leaf's direct
// path, and of every non-blank node above it, deriving each path secret
// from the one below (RFC 9420 §12.4.3.1: a joiner's path_secret from the
// Welcome). It returns the path secret one step past the root, the commit
// secret of the commit that set the path.
func (k *TreePrivateKeys) ImportPathSecret(s Suite, t *RatchetTree, x NodeIndex, pathSecret []byte) ([]byte, error) {
	n := t.NumLeaves()
	if uint32(x) >= t.Width() || IsLeaf(x) {
		return nil, fmt.Errorf("%w: path secret for node %d", ErrInvalidTree, x)
	}
	nodes := []NodeIndex{x}
	for _, y := range DirectPath(x, n) {
		if t.ParentNode(y) != nil {
			nodes = append(nodes, y)
		}
	}
	return k.setPathChain(s, t, nodes, pathSecret)
}

// setPathChain sets the keys of nodes from the chain of path secrets that
// starts at ps for nodes[0], and returns the next secret after the last.
func (k *TreePrivateKeys) setPathChain(s Suite, t *RatchetTree, nodes []NodeIndex, ps []byte) ([]byte, error) {
	ps = bytes.Clone(ps)
	for _, x := range nodes {
		if err := k.SetPathSecret(s, t, x, ps); err != nil {
			clear(ps)
			return nil, err
		}
		next, err := DeriveSecret(s, ps, "path")
		clear(ps)
		if err != nil {
			return nil, err
		}
		ps = next
	}
	return ps, nil
}

// PathUpdate is a fresh path generated by a committer: the new keys are in
// the tree; the path secrets wait to be encrypted by EncryptPath and sent to
// joiners in their Welcome. Wipe it once the commit is sent.
type PathUpdate struct {
	Sender LeafIndex
	// Leaf is the committer's new, signed LeafNode (source commit).
	Leaf *LeafNode
	// Nodes is the filtered direct path of Sender, leaf to root.
	Nodes []NodeIndex
	// CommitSecret is the path secret one step past the root.
	CommitSecret []byte
	// Keys are the committer's private keys after the commit.
	Keys *TreePrivateKeys

	pathSecrets [][]byte // one per Nodes entry
}

// PathSecretFor returns the node and path secret a joiner at leaf needs:
// those of the lowest node of the path above both leaf and the sender
// (GroupSecrets.path_secret, RFC 9420 §12.4.3.1). It returns false if no
// node of the path is above leaf.
func (pu *PathUpdate) PathSecretFor(leaf LeafIndex) (NodeIndex, []byte, bool) {
	for i, x := range pu.Nodes {
		if treeIsBelow(leaf.Node(), x) {
			return x, bytes.Clone(pu.pathSecrets[i]), true
		}
	}
	return 0, nil, false
}

// Wipe overwrites the secrets of pu with zeros. pu.Keys is left alone: it
// becomes the committer's state.
func (pu *PathUpdate) Wipe() {
	for _, ps := range pu.pathSecrets {
		clear(ps)
	}
	pu.pathSecrets = nil
	clear(pu.CommitSecret)
	pu.CommitSecret = nil
}

// GeneratePath refreshes the path of leaf `from` in t (RFC 9420 §7.4-§7.5):
// it blanks the direct path, draws a fresh leaf key pair and a random first
// path secret, derives the chain of path secrets and node key pairs along
// the filtered direct path, sets the parent hashes, and puts a copy of leaf
// with the new key, source commit and parent hash, signed with sigPriv for
// groupID, at `from`. leaf carries the committer's credential, signature
// key, capabilities and extensions. On error t is unchanged.
func (t *RatchetTree) GeneratePath(s Suite, from LeafIndex, leaf *LeafNode, sigPriv, groupID []byte) (*PathUpdate, error) {
	return t.generatePath(s, from, leaf, func(label string, content []byte) ([]byte, error) {
		return SignWithLabel(s, sigPriv, label, content)
	}, groupID)
}

// generatePath is GeneratePath with the leaf signed by sign, which a Group
// gives its parsed signature key to (signkey.go).
func (t *RatchetTree) generatePath(s Suite, from LeafIndex, leaf *LeafNode, sign signFunc, groupID []byte) (*PathUpdate, error) {
	if t.LeafNode(from) == nil {
		return nil, fmt.Errorf("%w: path from blank or missing leaf %d", ErrInvalidTree, from)
	}
	leafPriv, leafPub, err := s.GenerateKeyPair()
	if err != nil {
		return nil, fmt.Errorf("generating leaf key: %w", err)
	}
	first, err := randomBytes(s.HashSize())
	if err != nil {
		clear(leafPriv)
		return nil, fmt.Errorf("drawing path secret: %w", err)
	}
	defer clear(first)

	nodes := t.FilteredDirectPath(from)
	pu := &PathUpdate{Sender: from, Nodes: nodes, Keys: NewTreePrivateKeys(from, leafPriv)}
	clear(leafPriv)
	pubs := make([][]byte, len(nodes))
	ps := bytes.Clone(first)
	for i, x := range nodes {
		priv, pub, err := deriveNodeKeyPair(s, ps)
		if err != nil {
			pu.Wipe()
			pu.Keys.Wipe()
			return nil, fmt.Errorf("deriving key of node %d: %w", x, err)
		}
		pu.Keys.Path[x] = priv
		pubs[i] = pub
		pu.pathSecrets = append(pu.pathSecrets, ps)
		if ps, err = DeriveSecret(s, ps, "path"); err != nil {
			pu.Wipe()
			pu.Keys.Wipe()
			return nil, err
		}
	}
	pu.CommitSecret = ps

	nl := leaf.Clone()
	nl.EncryptionKey = leafPub
	nl.Source = LeafNodeSourceCommit
	nl.Lifetime = nil
	saved := t.saveDirectPath(from)
	ph := t.setPath(s, from, nodes, pubs)
	nl.ParentHash = ph
	if err := nl.signWith(sign, groupID, from); err != nil {
		t.restoreDirectPath(from, saved)
		pu.Wipe()
		pu.Keys.Wipe()
		return nil, err
	}
	t.setNode(from.Node(), Node{Leaf: nl})
	pu.Leaf = nl
	return pu, nil
}

// setPath blanks the direct path of from, puts the given public keys on the
// filtered direct path nodes, sets their parent hashes and returns the
// parent hash for the leaf.
func (t *RatchetTree) setPath(s Suite, from LeafIndex, nodes []NodeIndex, pubs [][]byte) []byte {
	t.blankDirectPath(from)
	for i, x := range nodes {
		t.setNode(x, Node{Parent: &ParentNode{EncryptionKey: pubs[i], UnmergedLeaves: []LeafIndex{}}})
	}
	return t.setPathParentHashes(s, from, nodes)
}

// saveDirectPath returns the leaf node and direct path nodes of from, to
// undo a failed change.
func (t *RatchetTree) saveDirectPath(from LeafIndex) []Node {
	saved := []Node{*t.nodes.at(from.Node())}
	for _, x := range DirectPath(from.Node(), t.NumLeaves()) {
		saved = append(saved, *t.nodes.at(x))
	}
	return saved
}

func (t *RatchetTree) restoreDirectPath(from LeafIndex, saved []Node) {
	t.setNode(from.Node(), saved[0])
	for i, x := range DirectPath(from.Node(), t.NumLeaves()) {
		t.setNode(x, saved[i+1])
	}
}

// EncryptPath builds the UpdatePath of pu (RFC 9420 §7.6): for each node of
// the filtered direct path, the path secret encrypted to every node of the
// resolution of its copath child, leaving out the leaves in exclude (the
// members added by the same commit). groupContext is the encoded
// provisional GroupContext, with the tree hash of t after GeneratePath.
// Large paths are encrypted on several goroutines; the Suite must be safe
// for concurrent use, as this package's suites are.
func (t *RatchetTree) EncryptPath(s Suite, pu *PathUpdate, groupContext []byte, exclude []LeafIndex) (*UpdatePath, error) {
	if len(pu.pathSecrets) != len(pu.Nodes) {
		return nil, fmt.Errorf("%w: path update already wiped", ErrInvalidTree)
	}
	type job struct {
		node, slot int       // index in Nodes, index in its resolution
		to         NodeIndex // the resolution node
	}
	up := &UpdatePath{LeafNode: *pu.Leaf.Clone(), Nodes: make([]UpdatePathNode, len(pu.Nodes))}
	var jobs []job
	for i, x := range pu.Nodes {
		p := t.ParentNode(x)
		if p == nil {
			return nil, fmt.Errorf("%w: node %d of the path is blank", ErrInvalidTree, x)
		}
		res := t.appendResolution(nil, treeCopathChild(x, pu.Sender), exclude)
		up.Nodes[i] = UpdatePathNode{EncryptionKey: bytes.Clone(p.EncryptionKey), EncryptedPathSecret: make([]HPKECiphertext, len(res))}
		for j, y := range res {
			jobs = append(jobs, job{node: i, slot: j, to: y})
		}
	}
	seal := encryptorWithLabel(s, updatePathNodeLabel, groupContext)
	err := parallelSeals(len(jobs), func(k int) error {
		jb := jobs[k]
		kem, ct, err := seal(t.nodes.at(jb.to).EncryptionKey(), pu.pathSecrets[jb.node])
		if err != nil {
			return fmt.Errorf("encrypting path secret of node %d to node %d: %w", pu.Nodes[jb.node], jb.to, err)
		}
		up.Nodes[jb.node].EncryptedPathSecret[jb.slot] = HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return up, nil
}

// MergeUpdatePath applies the public part of an UpdatePath received from
// sender (RFC 9420 §7.5): it checks that the path has one node per node of
// the sender's filtered direct path and that the new leaf has source commit,
// a valid signature for groupID and consistent capabilities; it blanks the
// sender's direct path, sets the new keys and parent hashes, and checks the
// leaf's parent hash and that no key now appears twice in the tree. That
// the leaf's encryption key changed is the caller's check: an external
// joiner's leaf is added with the path's own key before the merge. On
// error t is unchanged.
func (t *RatchetTree) MergeUpdatePath(s Suite, sender LeafIndex, path *UpdatePath, groupID []byte) error {
	return t.mergeUpdatePath(s, sender, path, groupID, false)
}

// mergeUpdatePath is MergeUpdatePath; leafChecked skips the checks of the
// new leaf's signature and encryption key, which a caller that ran
// validateLeafNodeStandalone on it for sender and groupID has made.
func (t *RatchetTree) mergeUpdatePath(s Suite, sender LeafIndex, path *UpdatePath, groupID []byte, leafChecked bool) error {
	if t.LeafNode(sender) == nil {
		return fmt.Errorf("%w: update path from blank or missing leaf %d", ErrInvalidTree, sender)
	}
	nodes := t.FilteredDirectPath(sender)
	if len(path.Nodes) != len(nodes) {
		return fmt.Errorf("%w: update path has %d nodes, filtered direct path of leaf %d has %d",
			ErrInvalidTree, len(path.Nodes), sender, len(nodes))
	}
	ln := path.LeafNode.Clone()
	if ln.Source != LeafNodeSourceCommit {
		return fmt.Errorf("%w: update path leaf has source %v", ErrInvalidTree, ln.Source)
	}
	if err := ln.CheckCapabilities(); err != nil {
		return fmt.Errorf("%w: update path leaf: %w", ErrInvalidTree, err)
	}
	if !leafChecked {
		if err := ln.VerifySignature(s, groupID, sender); err != nil {
			return fmt.Errorf("%w: update path leaf: %w", ErrInvalidTree, err)
		}
		if err := s.CheckHPKEPublicKey(ln.EncryptionKey); err != nil {
			return fmt.Errorf("%w: update path leaf: %w", ErrInvalidTree, err)
		}
	}
	pubs := make([][]byte, len(nodes))
	for i := range path.Nodes {
		if err := s.CheckHPKEPublicKey(path.Nodes[i].EncryptionKey); err != nil {
			return fmt.Errorf("%w: update path node %d: %w", ErrInvalidTree, nodes[i], err)
		}
		pubs[i] = bytes.Clone(path.Nodes[i].EncryptionKey)
	}
	saved := t.saveDirectPath(sender)
	ph := t.setPath(s, sender, nodes, pubs)
	if !bytes.Equal(ph, ln.ParentHash) {
		t.restoreDirectPath(sender, saved)
		return fmt.Errorf("%w: update path leaf parent hash mismatch", ErrInvalidTree)
	}
	t.setNode(sender.Node(), Node{Leaf: ln})
	if err := t.verifyPathKeysUnique(sender, nodes); err != nil {
		t.restoreDirectPath(sender, saved)
		return fmt.Errorf("after update path from leaf %d: %w", sender, err)
	}
	return nil
}

// verifyPathKeysUnique checks that the keys just set at leaf and its path
// nodes appear nowhere else in the tree: each HPKE key in no other node,
// the leaf's signature key in no other leaf.
func (t *RatchetTree) verifyPathKeysUnique(leaf LeafIndex, path []NodeIndex) error {
	changed := append([]NodeIndex{leaf.Node()}, path...)
	sigKey := t.nodes.at(leaf.Node()).Leaf.SignatureKey
	ix := t.keyIndex()
	unique := ix.count(string(sigKey), pickSig) == 1
	for _, c := range changed {
		unique = unique && ix.count(string(t.nodes.at(c).EncryptionKey()), pickEnc) == 1
	}
	if unique {
		return nil
	}
	// Find the pair for the error.
	for x := range t.nodes.len() {
		n := t.nodes.at(NodeIndex(x))
		if n.Blank() {
			continue
		}
		k := n.EncryptionKey()
		for _, c := range changed {
			if c != NodeIndex(x) && bytes.Equal(k, t.nodes.at(c).EncryptionKey()) {
				return fmt.Errorf("%w: nodes %d and %d share an encryption key", ErrInvalidTree, c, x)
			}
		}
		if n.Leaf != nil && NodeIndex(x) != leaf.Node() && bytes.Equal(n.Leaf.SignatureKey, sigKey) {
			return fmt.Errorf("%w: leaves %d and %d share a signature key", ErrInvalidTree, leaf, x/2)
		}
	}
	return nil
}

// DecryptPath processes an UpdatePath from sender that MergeUpdatePath has
// applied to t (RFC 9420 §7.5): it finds the lowest node of the sender's
// filtered direct path above k's leaf, decrypts its path secret with a key
// from the resolution of the copath child (leaving out the leaves in
// exclude, as the sender did), derives the keys of that node and every node
// above it, checks them against t, keeps them, and returns the commit
// secret. groupContext is the encoded provisional GroupContext. On error k
// is unchanged.
func (k *TreePrivateKeys) DecryptPath(s Suite, t *RatchetTree, sender LeafIndex, path *UpdatePath, groupContext []byte, exclude []LeafIndex) ([]byte, error) {
	commit, _, err := k.decryptPath(s, t, sender, path, groupContext, exclude)
	return commit, err
}

// decryptPath is DecryptPath that also returns the path secret it
// decrypted.
func (k *TreePrivateKeys) decryptPath(s Suite, t *RatchetTree, sender LeafIndex, path *UpdatePath, groupContext []byte, exclude []LeafIndex) (commit, pathSecret []byte, err error) {
	if sender == k.Leaf {
		return nil, nil, fmt.Errorf("%w: own update path", ErrInvalidTree)
	}
	nodes := t.FilteredDirectPath(sender)
	if len(path.Nodes) != len(nodes) {
		return nil, nil, fmt.Errorf("%w: update path has %d nodes, filtered direct path of leaf %d has %d",
			ErrInvalidTree, len(path.Nodes), sender, len(nodes))
	}
	i := slices.IndexFunc(nodes, func(x NodeIndex) bool { return treeIsBelow(k.Leaf.Node(), x) })
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: no node of the update path is above leaf %d", ErrInvalidTree, k.Leaf)
	}
	res := t.appendResolution(nil, treeCopathChild(nodes[i], sender), exclude)
	cts := path.Nodes[i].EncryptedPathSecret
	if len(cts) != len(res) {
		return nil, nil, fmt.Errorf("%w: node %d has %d encrypted path secrets, resolution has %d nodes",
			ErrInvalidTree, nodes[i], len(cts), len(res))
	}
	j := slices.IndexFunc(res, func(y NodeIndex) bool {
		return treeIsBelow(k.Leaf.Node(), y) && k.privateKey(y) != nil
	})
	if j < 0 {
		return nil, nil, fmt.Errorf("%w: no private key for the resolution of node %d", ErrInvalidTree, nodes[i])
	}
	ps, err := DecryptWithLabel(s, k.privateKey(res[j]), updatePathNodeLabel, groupContext, cts[j].KEMOutput, cts[j].Ciphertext)
	if err != nil {
		return nil, nil, fmt.Errorf("decrypting path secret of node %d: %w", nodes[i], err)
	}
	defer clear(ps)
	work := k.Clone()
	commit, err = work.setPathChain(s, t, nodes[i:], ps)
	if err != nil {
		work.Wipe()
		return nil, nil, err
	}
	work.Prune(t)
	old := *k
	*k = *work
	old.Wipe()
	return commit, bytes.Clone(ps), nil
}
