package mls

// The secret tree of RFC 9420 §9: per-sender, per-content-type symmetric
// ratchets derived from the epoch's encryption_secret, plus the sender-data
// key and nonce that hide who sent a PrivateMessage.
//
// Forward secrecy (§9.2) is kept by deleting every secret once it has been
// used: a tree node's secret when its children are derived, a leaf's secret
// when its two ratchets start, a ratchet secret when the next one is derived,
// and a key and nonce once they have decrypted a message. Deleted secrets are
// zeroed first. A receiver may keep the keys of skipped generations, so
// messages can arrive out of order, within limits set by MaxForwardDistance
// and OutOfOrderTolerance.

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Errors of the secret tree.
var (
	// ErrGenerationConsumed is returned for a generation whose key was
	// already used or has been deleted (it is older than the out-of-order
	// window).
	ErrGenerationConsumed = errors.New("mls: ratchet generation already consumed")
	// ErrGenerationTooFar is returned for a generation more than
	// MaxForwardDistance ahead of the ratchet.
	ErrGenerationTooFar = errors.New("mls: ratchet generation too far ahead")
	// ErrLeafOutOfRange is returned for a leaf outside the tree.
	ErrLeafOutOfRange = errors.New("mls: leaf index out of range")
)

// Defaults of the receiver window.
const (
	DefaultMaxForwardDistance  = 1000
	DefaultOutOfOrderTolerance = 128
)

// SenderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data from the first Nh bytes of its ciphertext
// (RFC 9420 §6.3.2).
func SenderDataKeyNonce(s Suite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	sample := ciphertext[:min(len(ciphertext), s.HashSize())]
	if key, err = ExpandWithLabel(s, senderDataSecret, "key", sample, s.AEADKeySize()); err != nil {
		return nil, nil, fmt.Errorf("mls: sender data key: %w", err)
	}
	if nonce, err = ExpandWithLabel(s, senderDataSecret, "nonce", sample, s.AEADNonceSize()); err != nil {
		return nil, nil, fmt.Errorf("mls: sender data nonce: %w", err)
	}
	return key, nonce, nil
}

// RatchetType selects one of a leaf's two ratchets.
type RatchetType uint8

// The two ratchets of each leaf.
const (
	HandshakeRatchet   RatchetType = 0
	ApplicationRatchet RatchetType = 1
)

func (rt RatchetType) label() string {
	if rt == HandshakeRatchet {
		return "handshake"
	}
	return "application"
}

// ratchetKey is the key and nonce of one generation.
type ratchetKey struct {
	key, nonce []byte
}

// ratchet is one leaf's handshake or application ratchet. secret is the
// ratchet secret of generation next; keys holds the keys of skipped
// generations (all below next) that a receiver may still need.
type ratchet struct {
	secret []byte
	next   uint32
	keys   map[uint32]ratchetKey
}

// SecretTree holds the state of an epoch's secret tree. It is not safe for
// concurrent use.
type SecretTree struct {
	// MaxForwardDistance bounds how far ahead of a receiving ratchet a
	// generation may be (default DefaultMaxForwardDistance).
	MaxForwardDistance uint32
	// OutOfOrderTolerance bounds how many keys of skipped generations a
	// receiving ratchet keeps (default DefaultOutOfOrderTolerance).
	OutOfOrderTolerance int

	suite   Suite
	nLeaves uint32
	// nodes holds the tree-node secrets not yet consumed.
	nodes map[NodeIndex][]byte
	// ratchets holds the started ratchets: [leaf][type].
	ratchets map[LeafIndex]*[2]*ratchet
}

// NewSecretTree starts the secret tree of an epoch for a ratchet tree of
// nLeaves leaves. It copies encryptionSecret; the caller should delete its
// own copy.
func NewSecretTree(s Suite, encryptionSecret []byte, nLeaves uint32) *SecretTree {
	st := &SecretTree{
		MaxForwardDistance:  DefaultMaxForwardDistance,
		OutOfOrderTolerance: DefaultOutOfOrderTolerance,
		suite:               s,
		nLeaves:             nLeaves,
		nodes:               map[NodeIndex][]byte{},
		ratchets:            map[LeafIndex]*[2]*ratchet{},
	}
	if nLeaves > 0 {
		st.nodes[Root(nLeaves)] = bytesClone(encryptionSecret)
	}
	return st
}

// NumLeaves returns the number of leaves the tree was made for.
func (st *SecretTree) NumLeaves() uint32 { return st.nLeaves }

// ratchetFor returns the ratchet of leaf, deriving the path from the
// nearest stored ancestor secret down to the leaf on first use.
func (st *SecretTree) ratchetFor(leaf LeafIndex, rt RatchetType) (*ratchet, error) {
	if uint32(leaf) >= st.nLeaves {
		return nil, fmt.Errorf("%w: leaf %d of %d", ErrLeafOutOfRange, leaf, st.nLeaves)
	}
	if rt > ApplicationRatchet {
		return nil, fmt.Errorf("mls: unknown ratchet type %d", rt)
	}
	if rs, ok := st.ratchets[leaf]; ok {
		return rs[rt], nil
	}
	s := st.suite
	nh := s.HashSize()
	// The path from the leaf up to the root; find the lowest node whose
	// secret is still stored.
	path := append([]NodeIndex{leaf.Node()}, DirectPath(leaf.Node(), st.nLeaves)...)
	top := -1
	for i, x := range path {
		if _, ok := st.nodes[x]; ok {
			top = i
			break
		}
	}
	if top < 0 {
		// Cannot happen: a leaf without ratchets always has a stored
		// ancestor, because secrets are deleted only after their children
		// are derived.
		return nil, fmt.Errorf("mls: secret tree has no secret above leaf %d", leaf)
	}
	for i := top; i > 0; i-- {
		p := path[i]
		secret := st.nodes[p]
		left, err := ExpandWithLabel(s, secret, "tree", []byte("left"), nh)
		if err != nil {
			return nil, err
		}
		right, err := ExpandWithLabel(s, secret, "tree", []byte("right"), nh)
		if err != nil {
			return nil, err
		}
		st.nodes[Left(p)] = left
		st.nodes[Right(p)] = right
		clear(secret)
		delete(st.nodes, p)
	}
	leafSecret := st.nodes[leaf.Node()]
	hs, err := ExpandWithLabel(s, leafSecret, "handshake", nil, nh)
	if err != nil {
		return nil, err
	}
	as, err := ExpandWithLabel(s, leafSecret, "application", nil, nh)
	if err != nil {
		return nil, err
	}
	clear(leafSecret)
	delete(st.nodes, leaf.Node())
	rs := &[2]*ratchet{{secret: hs}, {secret: as}}
	st.ratchets[leaf] = rs
	return rs[rt], nil
}

// step derives the key and nonce of generation r.next and advances the
// ratchet secret, deleting the old one.
func (st *SecretTree) step(r *ratchet) (uint32, ratchetKey, error) {
	s := st.suite
	if r.secret == nil || r.next == math.MaxUint32 {
		return 0, ratchetKey{}, fmt.Errorf("mls: ratchet exhausted")
	}
	g := r.next
	key, err := DeriveTreeSecret(s, r.secret, "key", g, s.AEADKeySize())
	if err != nil {
		return 0, ratchetKey{}, err
	}
	nonce, err := DeriveTreeSecret(s, r.secret, "nonce", g, s.AEADNonceSize())
	if err != nil {
		return 0, ratchetKey{}, err
	}
	next, err := DeriveTreeSecret(s, r.secret, "secret", g, s.HashSize())
	if err != nil {
		return 0, ratchetKey{}, err
	}
	clear(r.secret)
	r.secret = next
	r.next = g + 1
	return g, ratchetKey{key, nonce}, nil
}

// Next returns the key and nonce for the next message the owner of leaf
// sends with ratchet rt, and its generation. The ratchet moves on: the same
// key is never returned twice.
func (st *SecretTree) Next(leaf LeafIndex, rt RatchetType) (generation uint32, key, nonce []byte, err error) {
	r, err := st.ratchetFor(leaf, rt)
	if err != nil {
		return 0, nil, nil, err
	}
	g, k, err := st.step(r)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("mls: leaf %d %s ratchet: %w", leaf, rt.label(), err)
	}
	return g, k.key, k.nonce, nil
}

// Get returns the key and nonce of a received message from leaf at the given
// generation. A generation is handed out once: asking again fails with
// ErrGenerationConsumed. Generations skipped on the way forward keep their
// keys (at most OutOfOrderTolerance of them, the newest) for late messages;
// a generation more than MaxForwardDistance ahead fails with
// ErrGenerationTooFar and leaves the ratchet unchanged.
func (st *SecretTree) Get(leaf LeafIndex, rt RatchetType, generation uint32) (key, nonce []byte, err error) {
	r, err := st.ratchetFor(leaf, rt)
	if err != nil {
		return nil, nil, err
	}
	if generation < r.next {
		k, ok := r.keys[generation]
		if !ok {
			return nil, nil, fmt.Errorf("%w: leaf %d %s generation %d", ErrGenerationConsumed, leaf, rt.label(), generation)
		}
		delete(r.keys, generation)
		return k.key, k.nonce, nil
	}
	if generation-r.next > st.MaxForwardDistance {
		return nil, nil, fmt.Errorf("%w: leaf %d %s generation %d, ratchet at %d", ErrGenerationTooFar, leaf, rt.label(), generation, r.next)
	}
	for {
		g, k, err := st.step(r)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: leaf %d %s ratchet: %w", leaf, rt.label(), err)
		}
		if g == generation {
			st.prune(r)
			return k.key, k.nonce, nil
		}
		if st.OutOfOrderTolerance > 0 && generation-g <= uint32(st.OutOfOrderTolerance) {
			// Only the newest OutOfOrderTolerance skipped keys can
			// survive the prune below, so older ones are not kept.
			if r.keys == nil {
				r.keys = map[uint32]ratchetKey{}
			}
			r.keys[g] = k
		} else {
			clear(k.key)
			clear(k.nonce)
		}
	}
}

// prune deletes the oldest skipped keys beyond OutOfOrderTolerance.
func (st *SecretTree) prune(r *ratchet) {
	excess := len(r.keys) - max(st.OutOfOrderTolerance, 0)
	if excess <= 0 {
		return
	}
	gens := slices.Sorted(maps.Keys(r.keys))
	for _, g := range gens[:excess] {
		k := r.keys[g]
		clear(k.key)
		clear(k.nonce)
		delete(r.keys, g)
	}
}

// Clone returns a deep copy of the tree that shares no secret bytes with
// it, so a caller can try to process a message on the copy and keep or drop
// the result. The clone of a nil tree is nil.
func (st *SecretTree) Clone() *SecretTree {
	if st == nil {
		return nil
	}
	c := *st
	c.nodes = make(map[NodeIndex][]byte, len(st.nodes))
	for x, v := range st.nodes {
		c.nodes[x] = bytesClone(v)
	}
	c.ratchets = make(map[LeafIndex]*[2]*ratchet, len(st.ratchets))
	for l, rs := range st.ratchets {
		c.ratchets[l] = cloneRatchets(rs)
	}
	return &c
}

// cloneRatchets deep-copies one leaf's pair of ratchets.
func cloneRatchets(rs *[2]*ratchet) *[2]*ratchet {
	var cr [2]*ratchet
	for i, r := range rs {
		nr := &ratchet{secret: bytesClone(r.secret), next: r.next}
		if r.keys != nil {
			nr.keys = make(map[uint32]ratchetKey, len(r.keys))
			for g, k := range r.keys {
				nr.keys[g] = ratchetKey{key: bytesClone(k.key), nonce: bytesClone(k.nonce)}
			}
		}
		cr[i] = nr
	}
	return &cr
}

// secretLeafUndo saves the part of a secret tree that reading a message
// from one leaf may change: the leaf's ratchets, and while they have not
// started the secrets on the leaf's path and copath. It is cheaper than
// Clone when only one sender's state is at stake, and once the leaf's
// ratchets run it costs the same in a tree of any size.
type secretLeafUndo struct {
	st       *SecretTree
	leaf     LeafIndex
	active   bool                 // set until restore or discard
	nodes    map[NodeIndex][]byte // nil value: the node had no secret
	ratchets *[2]*ratchet
	had      bool
}

// snapshotLeaf saves what Get or Next for leaf may change, for restore to
// put back. A nil tree or a leaf out of range gives an undo that does
// nothing. Once the leaf's ratchets have started, Get and Next change
// only them (ratchetFor derives no tree node), so only they are saved.
func (st *SecretTree) snapshotLeaf(leaf LeafIndex) *secretLeafUndo {
	u := &secretLeafUndo{st: st, leaf: leaf}
	if st == nil || uint32(leaf) >= st.nLeaves {
		return u
	}
	u.active = true
	if rs, ok := st.ratchets[leaf]; ok {
		u.had = true
		u.ratchets = cloneRatchets(rs)
		return u
	}
	u.nodes = map[NodeIndex][]byte{}
	x := leaf.Node()
	save := func(y NodeIndex) {
		if v, ok := st.nodes[y]; ok {
			u.nodes[y] = bytesClone(v)
		} else {
			u.nodes[y] = nil
		}
	}
	save(x)
	for _, y := range DirectPath(x, st.nLeaves) {
		save(y)
	}
	for _, y := range Copath(x, st.nLeaves) {
		save(y)
	}
	return u
}

// restore puts the saved state back. It works once; later calls do
// nothing.
func (u *secretLeafUndo) restore() {
	if u == nil || !u.active {
		return
	}
	st := u.st
	for y, v := range u.nodes {
		clear(st.nodes[y])
		if v == nil {
			delete(st.nodes, y)
		} else {
			st.nodes[y] = v
		}
	}
	if rs, ok := st.ratchets[u.leaf]; ok {
		clearRatchets(rs)
	}
	if u.had {
		st.ratchets[u.leaf] = u.ratchets
	} else {
		delete(st.ratchets, u.leaf)
	}
	u.nodes, u.ratchets, u.active = nil, nil, false
}

// Clear zeroes and drops every secret the tree holds. The tree is unusable
// afterwards.
func (st *SecretTree) Clear() {
	for x, v := range st.nodes {
		clear(v)
		delete(st.nodes, x)
	}
	for l, rs := range st.ratchets {
		clearRatchets(rs)
		delete(st.ratchets, l)
	}
	st.nLeaves = 0
}

// clearRatchets zeroes and drops the secrets of one leaf's ratchets.
func clearRatchets(rs *[2]*ratchet) {
	for _, r := range rs {
		clear(r.secret)
		r.secret = nil
		for g, k := range r.keys {
			clear(k.key)
			clear(k.nonce)
			delete(r.keys, g)
		}
	}
}

// secretTreeFormat is the version byte of the stored form.
const secretTreeFormat = 1

// Marshal serializes the tree's state for storage: the suite, the window
// settings, the unconsumed node secrets and every started ratchet with its
// kept keys. The output is secret material.
func (st *SecretTree) Marshal() []byte {
	b := AppendUint8(nil, secretTreeFormat)
	b = AppendUint16(b, uint16(st.suite.ID()))
	b = AppendUint32(b, st.nLeaves)
	b = AppendUint32(b, st.MaxForwardDistance)
	b = AppendUint32(b, uint32(max(st.OutOfOrderTolerance, 0)))
	nodes := slices.Sorted(maps.Keys(st.nodes))
	b = AppendVector(b, func(b []byte) []byte {
		for _, x := range nodes {
			b = AppendUint32(b, uint32(x))
			b = AppendOpaque(b, st.nodes[x])
		}
		return b
	})
	leaves := slices.Sorted(maps.Keys(st.ratchets))
	b = AppendVector(b, func(b []byte) []byte {
		for _, l := range leaves {
			b = AppendUint32(b, uint32(l))
			for _, r := range st.ratchets[l] {
				b = AppendOpaque(b, r.secret)
				b = AppendUint32(b, r.next)
				gens := slices.Sorted(maps.Keys(r.keys))
				b = AppendVector(b, func(b []byte) []byte {
					for _, g := range gens {
						b = AppendUint32(b, g)
						b = AppendOpaque(b, r.keys[g].key)
						b = AppendOpaque(b, r.keys[g].nonce)
					}
					return b
				})
			}
		}
		return b
	})
	return b
}

// ParseSecretTree restores a tree from what Marshal wrote. Errors match
// ErrDecode, or ErrUnsupportedSuite for an unknown suite.
func ParseSecretTree(b []byte) (*SecretTree, error) {
	r := NewReader(b)
	if v := r.Uint8(); r.Err() == nil && v != secretTreeFormat {
		r.Fail("secret tree format %d", v)
	}
	id := CipherSuite(r.Uint16())
	nLeaves := r.Uint32()
	maxFwd := r.Uint32()
	tol := r.Uint32()
	if r.Err() != nil {
		return nil, fmt.Errorf("mls: SecretTree: %w", r.Err())
	}
	s, err := LookupSuite(id)
	if err != nil {
		return nil, fmt.Errorf("mls: SecretTree: %w", err)
	}
	if nLeaves > 1<<30 || tol > math.MaxInt32 {
		return nil, fmt.Errorf("mls: SecretTree: %w: bad sizes", ErrDecode)
	}
	st := NewSecretTree(s, nil, 0)
	st.nLeaves = nLeaves
	st.MaxForwardDistance = maxFwd
	st.OutOfOrderTolerance = int(tol)
	nh := s.HashSize()
	width := NodeWidth(nLeaves)
	// Entries are stored in ascending order, so each list has one encoding.
	prevNode := int64(-1)
	r.Vector(func(r *Reader) {
		x := NodeIndex(r.Uint32())
		v := r.Opaque()
		switch {
		case r.Err() != nil:
		case uint32(x) >= width:
			r.Fail("secret tree node %d outside %d nodes", x, width)
		case len(v) != nh:
			r.Fail("secret tree node %d secret is %d bytes", x, len(v))
		case int64(x) <= prevNode:
			r.Fail("secret tree node %d out of order", x)
		default:
			prevNode = int64(x)
			st.nodes[x] = v
		}
	})
	prevLeaf := int64(-1)
	r.Vector(func(r *Reader) {
		l := LeafIndex(r.Uint32())
		rs := &[2]*ratchet{}
		for i := range rs {
			rt := &ratchet{secret: r.Opaque(), next: r.Uint32()}
			if r.Err() == nil && len(rt.secret) != nh {
				r.Fail("ratchet secret is %d bytes", len(rt.secret))
			}
			prevGen := int64(-1)
			r.Vector(func(r *Reader) {
				g := r.Uint32()
				k := ratchetKey{key: r.Opaque(), nonce: r.Opaque()}
				switch {
				case r.Err() != nil:
				case g >= rt.next:
					r.Fail("kept key for generation %d at or past %d", g, rt.next)
				case len(k.key) != s.AEADKeySize() || len(k.nonce) != s.AEADNonceSize():
					r.Fail("kept key of wrong size")
				case int64(g) <= prevGen:
					r.Fail("kept key for generation %d out of order", g)
				default:
					prevGen = int64(g)
					if rt.keys == nil {
						rt.keys = map[uint32]ratchetKey{}
					}
					rt.keys[g] = k
				}
			})
			rs[i] = rt
		}
		switch {
		case r.Err() != nil:
		case uint32(l) >= nLeaves:
			r.Fail("ratchets for leaf %d outside %d leaves", l, nLeaves)
		case int64(l) <= prevLeaf:
			r.Fail("ratchets for leaf %d out of order", l)
		default:
			prevLeaf = int64(l)
			st.ratchets[l] = rs
		}
	})
	if err := r.Finish(); err != nil {
		st.Clear()
		return nil, fmt.Errorf("mls: SecretTree: %w", err)
	}
	return st, nil
}

// MarshalBinary implements encoding.BinaryMarshaler with Marshal.
func (st *SecretTree) MarshalBinary() ([]byte, error) { return st.Marshal(), nil }

// UnmarshalBinary implements encoding.BinaryUnmarshaler with ParseSecretTree.
func (st *SecretTree) UnmarshalBinary(b []byte) error {
	t, err := ParseSecretTree(b)
	if err != nil {
		return err
	}
	*st = *t
	return nil
}
