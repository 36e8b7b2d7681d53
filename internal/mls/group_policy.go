package mls

import (
	"bytes"
	"fmt"
)

// This file calls the application's Policy (policy.go) at the points where
// a leaf or a proposal enters the group.

// checkProposalLeaf asks the IdentityProvider about the leaf an Add or an
// Update proposal brings; an Add is not placed yet (NoLeaf).
func (g *Group) checkProposalLeaf(p *Proposal, sender Sender, exts []Extension) error {
	switch p.Type {
	case ProposalAdd:
		return g.validateLeaf(LeafFromKeyPackage, NoLeaf, &p.Add.KeyPackage.LeafNode, exts)
	case ProposalUpdate:
		prev, _ := g.Member(sender.LeafIndex)
		return g.validateSuccessor(LeafFromUpdate, prev, sender.LeafIndex, &p.Update.LeafNode, exts)
	}
	return nil
}

// checkCommitLeaves asks the IdentityProvider about the leaves a commit's
// proposals bring, at their places in ng, the group after the proposals.
func (g *Group) checkCommitLeaves(ng *Group, res *applied) error {
	if g.policy.Identity == nil {
		return nil
	}
	for _, l := range res.added {
		if err := g.validateLeaf(LeafFromKeyPackage, l, ng.tree.LeafNode(l), ng.ctx.Extensions); err != nil {
			return err
		}
	}
	for _, l := range res.updated {
		prev, _ := g.Member(l)
		if err := g.validateSuccessor(LeafFromUpdate, prev, l, ng.tree.LeafNode(l), ng.ctx.Extensions); err != nil {
			return err
		}
	}
	return nil
}

// proposalSender describes the sender of proposal p as Received does: a
// member by its leaf, an external sender by its external_senders entry, a
// new member by its KeyPackage.
func (g *Group) proposalSender(sender Sender, p *Proposal) Member {
	switch sender.Type {
	case SenderMember:
		return g.mustMember(sender.LeafIndex)
	case SenderNewMemberProposal:
		if p != nil && p.Add != nil {
			ln := &p.Add.KeyPackage.LeafNode
			return Member{Leaf: NoLeaf, Identity: bytes.Clone(ln.Credential.Identity), Credential: *cloneCredential(&ln.Credential),
				SignatureKey: bytes.Clone(ln.SignatureKey)}
		}
	case SenderExternal:
		if es, err := g.externalSenderKey(sender.SenderIndex); err == nil {
			return Member{Leaf: NoLeaf, Identity: bytes.Clone(es.Credential.Identity), Credential: *cloneCredential(&es.Credential),
				SignatureKey: bytes.Clone(es.SignatureKey)}
		}
	}
	return Member{Leaf: NoLeaf}
}

// proposalInfo describes a resolved proposal for the application.
func (g *Group) proposalInfo(rp *resolvedProposal, inCommit bool) ProposalInfo {
	p, _ := ParseProposal(rp.proposal.Marshal())
	if p == nil {
		p = rp.proposal
	}
	return ProposalInfo{
		Proposal:   p,
		Ref:        bytes.Clone(rp.ref),
		SenderType: rp.sender.Type,
		Sender:     g.proposalSender(rp.sender, rp.proposal),
		Epoch:      g.ctx.Epoch,
		InCommit:   inCommit,
	}
}

// stageCommit describes a received commit for the CommitInspector: ng is
// the group after it (before its epoch is installed), res what its
// proposals did, committer the committer's leaf in ng and pathChange the
// committer's UpdatePath leaf change, if any.
func (g *Group) stageCommit(ng *Group, res *applied, list []resolvedProposal, sender Sender, committer LeafIndex, pathChange *LeafChange) *StagedCommit {
	sc := &StagedCommit{
		Epoch:       g.ctx.Epoch,
		NewEpoch:    g.ctx.Epoch + 1,
		SenderType:  sender.Type,
		Committer:   ng.mustMember(committer),
		Added:       ng.membersAt(res.added),
		Removed:     append([]Member(nil), res.removed...),
		PSKs:        append([]PreSharedKeyID(nil), res.psks...),
		SelfRemoved: res.selfRemoved,
		Resync:      sender.Type == SenderNewMemberCommit && len(res.removed) > 0,
	}
	if sender.Type == SenderMember {
		sc.Committer = g.mustMember(committer)
	}
	if res.reinit != nil {
		r := *res.reinit
		r.GroupID = bytes.Clone(r.GroupID)
		r.Extensions = cloneExtensions(r.Extensions)
		sc.ReInit = &r
	}
	for i := range list {
		sc.Proposals = append(sc.Proposals, g.proposalInfo(&list[i], list[i].ref == nil))
	}
	for _, l := range res.updated {
		sc.Updated = append(sc.Updated, LeafChange{Leaf: l, Old: g.mustMember(l), New: ng.mustMember(l)})
	}
	if pathChange != nil {
		sc.Updated = append(sc.Updated, *pathChange)
	}
	if res.gce {
		sc.ExtensionsChanged = true
		sc.OldExtensions = cloneExtensions(g.ctx.Extensions)
		sc.NewExtensions = cloneExtensions(ng.ctx.Extensions)
	}
	return sc
}

// leafInfo describes ln for the IdentityProvider.
func (g *Group) leafInfo(origin LeafOrigin, epoch uint64, leaf LeafIndex, ln *LeafNode, exts []Extension) *LeafInfo {
	c := ln.Clone()
	return &LeafInfo{
		Origin:       origin,
		GroupID:      bytes.Clone(g.ctx.GroupID),
		Epoch:        epoch,
		Leaf:         leaf,
		Credential:   c.Credential,
		SignatureKey: c.SignatureKey,
		LeafNode:     c,
		Extensions:   cloneExtensions(exts),
	}
}

// validateLeaf asks the IdentityProvider about ln.
func (g *Group) validateLeaf(origin LeafOrigin, leaf LeafIndex, ln *LeafNode, exts []Extension) error {
	id := g.policy.Identity
	if id == nil {
		return nil
	}
	if err := id.ValidateLeaf(g.leafInfo(origin, g.ctx.Epoch, leaf, ln, exts)); err != nil {
		return fmt.Errorf("%w: %v leaf %s: %w", ErrCredentialRefused, origin, leafName(leaf), err)
	}
	return nil
}

// validateSuccessor asks the IdentityProvider whether ln may replace prev
// (after ValidateLeaf).
func (g *Group) validateSuccessor(origin LeafOrigin, prev Member, leaf LeafIndex, ln *LeafNode, exts []Extension) error {
	id := g.policy.Identity
	if id == nil {
		return nil
	}
	info := g.leafInfo(origin, g.ctx.Epoch, leaf, ln, exts)
	if err := id.ValidateLeaf(info); err != nil {
		return fmt.Errorf("%w: %v leaf %s: %w", ErrCredentialRefused, origin, leafName(leaf), err)
	}
	if err := id.ValidSuccessor(prev, info); err != nil {
		return fmt.Errorf("%w: %v leaf %s does not succeed leaf %d: %w", ErrCredentialRefused, origin, leafName(leaf), prev.Leaf, err)
	}
	return nil
}

// validateTree asks the IdentityProvider about every leaf of a joiner's
// tree.
func (g *Group) validateTree(t *RatchetTree) error {
	if g.policy.Identity == nil {
		return nil
	}
	for _, l := range t.Members() {
		if err := g.validateLeaf(LeafFromTree, l, t.LeafNode(l), g.ctx.Extensions); err != nil {
			return err
		}
	}
	return nil
}

func leafName(l LeafIndex) string {
	if l == NoLeaf {
		return "(not yet placed)"
	}
	return fmt.Sprint(uint32(l))
}

// keepProposal asks the ProposalFilter about a proposal.
func (g *Group) keepProposal(info *ProposalInfo) error {
	if err := g.policy.proposalFilter().KeepProposal(info); err != nil {
		return fmt.Errorf("%w: %v from %v: %w", ErrProposalRefused, info.Proposal.Type, info.SenderType, err)
	}
	return nil
}

// inspectCommit asks the CommitInspector about a staged commit.
func (g *Group) inspectCommit(sc *StagedCommit) error {
	if g.policy.Commits == nil {
		return nil
	}
	if err := g.policy.Commits.InspectCommit(sc); err != nil {
		return fmt.Errorf("%w: %w", ErrCommitRefused, err)
	}
	return nil
}
