package mls

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
)

// This file stores a Group: MarshalBinary writes every part of the state
// (including secrets: store it as such) in a versioned, deterministic
// encoding, and UnmarshalGroup reads it back into a Group that shares
// nothing with the bytes or with any other Group.

// groupStateVersion is the version byte of the stored form.
const groupStateVersion = 1

// maxPendingDepth bounds the nesting of pending commit states.
const maxPendingDepth = 1

// MarshalBinary encodes the group's whole state, secrets included. The
// encoding is deterministic: the same state gives the same bytes.
func (g *Group) MarshalBinary() ([]byte, error) {
	return g.appendState(nil), nil
}

func appendSecretTree(b []byte, st *SecretTree) []byte {
	return AppendOpaque(b, st.Marshal())
}

func (g *Group) appendState(b []byte) []byte {
	b = AppendUint8(b, groupStateVersion)
	b = AppendUint16(b, uint16(g.suite.ID()))
	b = g.config.append(b)
	b = g.ctx.append(b)
	b = AppendOpaque(b, g.interim)
	b = AppendOpaque(b, g.confirmationTag)
	b = AppendOpaque(b, g.tree.Marshal())
	b = AppendUint32(b, uint32(g.self))
	b = AppendOpaque(b, g.sigPriv)
	b = AppendOpaque(b, g.priv.Marshal())
	k := &g.keys
	for _, v := range [][]byte{k.initSecret, k.senderDataSecret, k.exporterSecret, k.epochAuthenticator,
		k.externalSecret, k.confirmationKey, k.membershipKey, k.resumptionPSK} {
		b = AppendOpaque(b, v)
	}
	b = appendSecretTree(b, k.secretTree)
	b = AppendVector(b, func(b []byte) []byte {
		for _, p := range g.past {
			b = AppendUint64(b, p.epoch)
			b = p.ctx.append(b)
			b = AppendOpaque(b, p.senderDataSecret)
			b = appendSecretTree(b, p.secretTree)
			b = AppendVector(b, func(b []byte) []byte {
				for l := range p.numSenders() {
					ps := p.sender(LeafIndex(l))
					b = AppendOptional(b, ps != nil, func(b []byte) []byte {
						b = ps.credential.append(b)
						return AppendOpaque(b, ps.signatureKey)
					})
				}
				return b
			})
		}
		return b
	})
	b = AppendVector(b, func(b []byte) []byte {
		epochs := slices.Sorted(maps.Keys(g.resumption))
		for _, e := range epochs {
			b = AppendUint64(b, e)
			b = AppendOpaque(b, g.resumption[e])
		}
		return b
	})
	b = appendKeyedSecrets(b, g.psks)
	b = AppendVector(b, func(b []byte) []byte {
		for i := range g.proposals {
			cp := &g.proposals[i]
			b = AppendOpaque(b, cp.ref)
			b = cp.proposal.append(b)
			b = cp.sender.append(b)
			b = AppendOpaque(b, cp.msgHash)
		}
		return b
	})
	b = appendKeyedSecrets(b, g.pendingUpdates)
	b = AppendOptional(b, g.pending != nil, func(b []byte) []byte {
		r := g.pending.result
		b = AppendOpaque(b, r.Message)
		b = AppendOpaque(b, r.Welcome)
		b = AppendOpaque(b, r.GroupInfo)
		b = AppendVector(b, func(b []byte) []byte {
			for _, l := range r.Added {
				b = AppendUint32(b, uint32(l))
			}
			return b
		})
		b = AppendVector(b, func(b []byte) []byte {
			for _, m := range r.Removed {
				b = AppendUint32(b, uint32(m.Leaf))
				b = m.Credential.append(b)
				b = AppendOpaque(b, m.SignatureKey)
			}
			return b
		})
		b = AppendUint64(b, r.Epoch)
		return AppendOpaque(b, g.pending.state.appendState(nil))
	})
	b = AppendOpaque(b, g.lastOwnCommit)
	b = AppendBool(b, g.removed)
	b = AppendOptional(b, g.reinit != nil, func(b []byte) []byte {
		p := Proposal{Type: ProposalReInit, ReInit: g.reinit}
		return p.append(b)
	})
	return b
}

func appendKeyedSecrets(b []byte, m map[string][]byte) []byte {
	keys := slices.Sorted(maps.Keys(m))
	return AppendVector(b, func(b []byte) []byte {
		for _, k := range keys {
			b = AppendOpaque(b, []byte(k))
			b = AppendOpaque(b, m[k])
		}
		return b
	})
}

func readKeyedSecrets(r *Reader) map[string][]byte {
	m := map[string][]byte{}
	r.Vector(func(r *Reader) {
		k := r.Opaque()
		v := r.Opaque()
		if r.Err() == nil {
			m[string(k)] = v
		}
	})
	return m
}

// UnmarshalGroup restores a Group from MarshalBinary's output.
func UnmarshalGroup(b []byte) (*Group, error) {
	r := NewReader(b)
	g, err := readGroupState(r, 0)
	if err != nil {
		return nil, err
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("mls: group state: %w", err)
	}
	g.unsaved = UnsavedNothing // it is what was stored
	return g, nil
}

func readGroupState(r *Reader, depth int) (*Group, error) {
	fail := func(err error) (*Group, error) { return nil, fmt.Errorf("mls: group state: %w", err) }
	if v := r.Uint8(); r.Err() == nil && v != groupStateVersion {
		return fail(fmt.Errorf("%w: version %d", ErrDecode, v))
	}
	cs := CipherSuite(r.Uint16())
	if r.Err() != nil {
		return fail(r.Err())
	}
	s, err := LookupSuite(cs)
	if err != nil {
		return fail(err)
	}
	g := &Group{suite: s}
	g.config = r.readGroupConfig()
	g.ctx = r.readGroupContext()
	g.interim = r.Opaque()
	g.confirmationTag = r.Opaque()
	treeBytes := r.Opaque()
	g.self = LeafIndex(r.Uint32())
	g.sigPriv = r.Opaque()
	privBytes := r.Opaque()
	k := &g.keys
	for _, p := range []*[]byte{&k.initSecret, &k.senderDataSecret, &k.exporterSecret, &k.epochAuthenticator,
		&k.externalSecret, &k.confirmationKey, &k.membershipKey, &k.resumptionPSK} {
		*p = r.Opaque()
	}
	stBytes := r.Opaque()
	if r.Err() != nil {
		return fail(r.Err())
	}
	if g.ctx.CipherSuite != cs {
		return fail(fmt.Errorf("%w: suite %v in a %v state", ErrDecode, g.ctx.CipherSuite, cs))
	}
	if g.tree, err = ParseRatchetTree(treeBytes); err != nil {
		return fail(err)
	}
	if g.priv, err = ParseTreePrivateKeys(privBytes); err != nil {
		return fail(err)
	}
	if k.secretTree, err = ParseSecretTree(stBytes); err != nil {
		return fail(err)
	}
	var perr error
	r.Vector(func(r *Reader) {
		p := &pastEpoch{epoch: r.Uint64()}
		p.ctx = r.readGroupContext()
		p.senderDataSecret = r.Opaque()
		stb := r.Opaque()
		p.senders = []*pastSender{}
		r.Vector(func(r *Reader) {
			var ps *pastSender
			r.Optional(func(r *Reader) {
				ps = &pastSender{credential: r.readCredential(), signatureKey: r.Opaque()}
			})
			p.senders = append(p.senders, ps)
		})
		if r.Err() != nil || perr != nil {
			return
		}
		if p.secretTree, perr = ParseSecretTree(stb); perr != nil {
			return
		}
		g.past = append(g.past, p)
	})
	if perr != nil {
		return fail(perr)
	}
	g.resumption = map[uint64][]byte{}
	r.Vector(func(r *Reader) {
		e := r.Uint64()
		v := r.Opaque()
		if r.Err() == nil {
			g.resumption[e] = v
		}
	})
	g.psks = readKeyedSecrets(r)
	r.Vector(func(r *Reader) {
		cp := cachedProposal{ref: ProposalRef(r.Opaque())}
		cp.proposal = r.readProposal()
		cp.sender = r.readSender()
		if cp.msgHash = r.Opaque(); len(cp.msgHash) == 0 {
			cp.msgHash = nil
		}
		if r.Err() == nil {
			g.proposals = append(g.proposals, cp)
		}
	})
	g.pendingUpdates = readKeyedSecrets(r)
	var pendErr error
	r.Optional(func(r *Reader) {
		res := &CommitResult{Message: r.Opaque(), Welcome: r.Opaque(), GroupInfo: r.Opaque()}
		if len(res.Welcome) == 0 {
			res.Welcome = nil
		}
		r.Vector(func(r *Reader) { res.Added = append(res.Added, LeafIndex(r.Uint32())) })
		r.Vector(func(r *Reader) {
			m := Member{Leaf: LeafIndex(r.Uint32())}
			m.Credential = r.readCredential()
			m.SignatureKey = r.Opaque()
			m.Identity = bytes.Clone(m.Credential.Identity)
			res.Removed = append(res.Removed, m)
		})
		res.Epoch = r.Uint64()
		sub := r.Sub()
		if r.Err() != nil {
			return
		}
		if depth >= maxPendingDepth {
			pendErr = fmt.Errorf("%w: nested pending commits", ErrDecode)
			return
		}
		ps, err := readGroupState(sub, depth+1)
		if err != nil {
			pendErr = err
			return
		}
		r.Merge(sub)
		g.pending = &pendingCommit{result: res, state: ps}
	})
	if pendErr != nil {
		return fail(pendErr)
	}
	g.lastOwnCommit = r.Opaque()
	if len(g.lastOwnCommit) == 0 {
		g.lastOwnCommit = nil
	}
	g.removed = r.Bool()
	r.Optional(func(r *Reader) {
		p := r.readProposal()
		if r.Err() == nil {
			if p.Type != ProposalReInit {
				r.Fail("stored reinit is a %v proposal", p.Type)
				return
			}
			g.reinit = p.ReInit
		}
	})
	if r.Err() != nil {
		return fail(r.Err())
	}
	if err := g.checkConsistent(); err != nil {
		return fail(err)
	}
	return g, nil
}

// checkConsistent checks the invariants a stored state must meet so that
// later operations cannot fail in surprising ways.
func (g *Group) checkConsistent() error {
	nh := g.suite.HashSize()
	if !g.removed {
		if g.tree.LeafNode(g.self) == nil {
			return fmt.Errorf("%w: own leaf %d is blank", ErrDecode, g.self)
		}
		if g.priv.Leaf != g.self {
			return fmt.Errorf("%w: private keys for leaf %d, own leaf %d", ErrDecode, g.priv.Leaf, g.self)
		}
		if len(g.keys.initSecret) != nh || len(g.keys.senderDataSecret) != nh || len(g.keys.membershipKey) != nh ||
			len(g.keys.confirmationKey) != nh || len(g.keys.exporterSecret) != nh || len(g.keys.externalSecret) != nh {
			return fmt.Errorf("%w: epoch secrets of the wrong size", ErrDecode)
		}
		if g.keys.secretTree.NumLeaves() != g.tree.NumLeaves() {
			return fmt.Errorf("%w: secret tree of %d leaves for a tree of %d", ErrDecode, g.keys.secretTree.NumLeaves(), g.tree.NumLeaves())
		}
	}
	for _, p := range g.past {
		if p.secretTree.NumLeaves() != p.numSenders() || len(p.senderDataSecret) != nh {
			return fmt.Errorf("%w: past epoch %d is inconsistent", ErrDecode, p.epoch)
		}
	}
	for _, cp := range g.proposals {
		if cp.proposal.Type == ProposalPreSharedKey && cp.proposal.PreSharedKey == nil {
			return fmt.Errorf("%w: empty stored proposal", ErrDecode)
		}
	}
	return nil
}
