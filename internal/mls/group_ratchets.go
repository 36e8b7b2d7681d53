package mls

import (
	"errors"
	"fmt"
)

// Saving a group after each message. An application message moves only
// the secret trees (the current epoch's, or a past epoch's for a late
// message); the rest of the state (the ratchet tree, the context, the
// epoch secrets), which grows with the group, changes only with proposals
// and commits. So an application that stores a group need not write its
// whole state after every message:
//
//	switch g.Unsaved() {
//	case mls.UnsavedState:    // MarshalBinary, and forget the ratchets saved beside it
//	case mls.UnsavedRatchets: // AppendRatchets, beside the state saved last
//	}
//	g.MarkSaved()
//
// and to load it, UnmarshalGroup the state, then LoadRatchets the
// ratchets saved since (if any). Unsaved errs on the side of the whole
// state: every operation but Protect and a ProcessMessage that returns an
// application message marks the whole state, failed ones included.

// Unsaved says what changed in a group since it was decoded or marked
// saved.
type Unsaved uint8

const (
	// UnsavedState: the group was made, joined or changed beyond its
	// secret trees; store MarshalBinary. It is the zero value, so a group
	// nobody marked is saved whole.
	UnsavedState Unsaved = iota
	// UnsavedRatchets: only the secret trees moved; AppendRatchets is
	// enough beside the state last stored.
	UnsavedRatchets
	// UnsavedNothing: nothing changed.
	UnsavedNothing
)

// Unsaved reports what changed since the group was decoded or MarkSaved.
func (g *Group) Unsaved() Unsaved { return g.unsaved }

// MarkSaved records that what Unsaved reported is stored.
func (g *Group) MarkSaved() { g.unsaved = UnsavedNothing }

// changedState marks the whole state as changed. Every exported method
// that may change the group beyond its secret trees defers it, so that it
// holds even where the method replaces *g.
func (g *Group) changedState() { g.unsaved = UnsavedState }

// movedRatchets marks the secret trees as changed (unless more did).
func (g *Group) movedRatchets(before Unsaved) {
	g.unsaved = min(before, UnsavedRatchets)
}

// ratchetsVersion is the version byte of AppendRatchets's encoding.
const ratchetsVersion = 1

// AppendRatchets appends the group's secret trees to b: the current
// epoch's and those of the past epochs kept for late messages, with the
// epochs they belong to. The output is secret material, as MarshalBinary's
// is. Its size grows with the senders and the generations kept, not with
// the group.
func (g *Group) AppendRatchets(b []byte) []byte {
	b = AppendUint8(b, ratchetsVersion)
	b = AppendUint64(b, g.ctx.Epoch)
	b = appendSecretTree(b, g.keys.secretTree)
	return AppendVector(b, func(b []byte) []byte {
		for _, p := range g.past {
			b = AppendUint64(b, p.epoch)
			b = appendSecretTree(b, p.secretTree)
		}
		return b
	})
}

// LoadRatchets replaces the group's secret trees with those AppendRatchets
// wrote from the same state, moved on by application messages since. It
// fails with an error matching ErrDecode, and leaves the group unchanged,
// when b is malformed or belongs to another state: another epoch, other
// past epochs, trees of other sizes or suites. The trees it replaces are
// wiped.
func (g *Group) LoadRatchets(b []byte) error {
	fail := func(err error) error { return fmt.Errorf("mls: ratchets: %w", err) }
	r := NewReader(b)
	if v := r.Uint8(); r.Err() == nil && v != ratchetsVersion {
		return fail(fmt.Errorf("%w: version %d", ErrDecode, v))
	}
	epoch := r.Uint64()
	cur := r.Opaque()
	type past struct {
		epoch uint64
		tree  []byte
	}
	var ps []past
	r.Vector(func(r *Reader) {
		e := r.Uint64()
		t := r.Opaque()
		if r.Err() == nil {
			ps = append(ps, past{e, t})
		}
	})
	if err := r.Finish(); err != nil {
		return fail(err)
	}
	if epoch != g.ctx.Epoch {
		return fail(fmt.Errorf("%w: saved at epoch %d, the group is at epoch %d", ErrDecode, epoch, g.ctx.Epoch))
	}
	if len(ps) != len(g.past) {
		return fail(fmt.Errorf("%w: %d past epochs, the group keeps %d", ErrDecode, len(ps), len(g.past)))
	}
	trees := make([]*SecretTree, 0, 1+len(ps))
	wipe := func() {
		for _, t := range trees {
			t.Clear()
		}
	}
	parse := func(b []byte, like *SecretTree) error {
		t, err := ParseSecretTree(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				err = fmt.Errorf("%w: %w", ErrDecode, err) // an unknown suite
			}
			return err
		}
		trees = append(trees, t)
		if t.suite.ID() != like.suite.ID() || t.nLeaves != like.nLeaves {
			return fmt.Errorf("%w: a secret tree of %d leaves (suite %v) for one of %d (suite %v)", ErrDecode, t.nLeaves, t.suite.ID(), like.nLeaves, like.suite.ID())
		}
		return nil
	}
	if err := parse(cur, g.keys.secretTree); err != nil {
		wipe()
		return fail(err)
	}
	for i, p := range ps {
		if p.epoch != g.past[i].epoch {
			wipe()
			return fail(fmt.Errorf("%w: past epoch %d where the group keeps %d", ErrDecode, p.epoch, g.past[i].epoch))
		}
		if err := parse(p.tree, g.past[i].secretTree); err != nil {
			wipe()
			return fail(err)
		}
	}
	g.keys.secretTree.Clear()
	g.keys.secretTree = trees[0]
	for i, p := range g.past {
		p.secretTree.Clear()
		p.secretTree = trees[1+i]
	}
	return nil
}
