package mls

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// This file makes proposals and commits (RFC 9420 §12.1, §12.4): a commit
// is built on a copy of the group and kept as pending until the
// application merges it (once the delivery service accepted it) or
// discards it. It also checks proposal lists (§12.2) and applies them
// (§12.3), for commits made here and commits received.

// CommitOptions tunes Commit. The zero value commits every proposal of the
// epoch that the group's Policy kept and that is still valid, with an
// UpdatePath when one is required.
type CommitOptions struct {
	// Proposals are committed by value, after the pending ones.
	Proposals []Proposal
	// SkipPending leaves out the proposals received in this epoch.
	SkipPending bool
	// ForcePath includes an UpdatePath even when none is required.
	ForcePath bool
	// OmitRatchetTree leaves the ratchet_tree extension out of the
	// Welcome's GroupInfo; joiners then need the tree out of band
	// (Group.RatchetTree after the merge).
	OmitRatchetTree bool
	// WelcomeExtensions are added to the GroupInfo inside the Welcome,
	// which only the joiners can decrypt: application metadata (a group
	// name, say) that must not travel in clear GroupContext extensions
	// when handshake messages are PublicMessages. Joiners read them with
	// Group.WelcomeExtensions.
	WelcomeExtensions []Extension
	// AuthenticatedData is sent in clear with the commit.
	AuthenticatedData []byte
	// OmitGroupInfo leaves CommitResult.GroupInfo nil. Building it costs
	// a signature and an encoding of the whole tree, O(N) in a group of N;
	// Group.GroupInfo makes one after the merge when an external joiner
	// needs it.
	OmitGroupInfo bool
	// CredentialTypes, when not nil, are the further credential types the
	// new leaf of this client's UpdatePath supports, after basic and its
	// credential's own type: Signer.CredentialTypes, as a KeyPackage made
	// now would list them. A leaf may change its capabilities in an
	// update (RFC 9420 §7.2), so a member of a group older than a new
	// credential type starts supporting it; the commit is refused when
	// the new leaf lacks a type in use or a required capability. Setting
	// it forces an UpdatePath.
	CredentialTypes []CredentialType
}

// CommitResult is what a commit produces, all as MLSMessage bytes.
type CommitResult struct {
	// Message carries the commit to the group.
	Message []byte
	// Welcome is for the members the commit adds (nil if none).
	Welcome []byte
	// GroupInfo describes the new epoch, with the ratchet tree and the
	// external public key: enough for an external join (nil with
	// CommitOptions.OmitGroupInfo).
	GroupInfo []byte
	// Added are the leaves of the new members, in Add order.
	Added []LeafIndex
	// Removed are the members the commit removes.
	Removed []Member
	// Epoch is the epoch the commit starts.
	Epoch uint64
}

// hostileCommitter, set only by tests, lets Commit build a commit whose
// leaves do not all support each other's credential types, as a hostile
// member's client would, so that the receivers' check can be tested.
var hostileCommitter bool

// pendingCommit is a commit made by this client and not yet merged.
type pendingCommit struct {
	result *CommitResult
	state  *Group
}

// handshakeWireFormat is the wire format of this client's proposals and
// commits.
func (g *Group) handshakeWireFormat() WireFormat {
	if g.config.PublicHandshake {
		return WireFormatPublicMessage
	}
	return WireFormatPrivateMessage
}

// frame signs content and protects it with the keys of the current epoch
// of g, using st as the epoch's secret tree (it advances the sender's
// handshake ratchet). It returns the AuthenticatedContent (for commits,
// the caller adds the confirmation tag through finish).
func (g *Group) signContent(ct ContentType, aad []byte, wf WireFormat) func(fc *FramedContent) (*AuthenticatedContent, error) {
	return func(fc *FramedContent) (*AuthenticatedContent, error) {
		fc.GroupID = g.ctx.GroupID
		fc.Epoch = g.ctx.Epoch
		fc.Sender = MemberSender(g.self)
		fc.AuthenticatedData = bytes.Clone(aad)
		if fc.AuthenticatedData == nil {
			fc.AuthenticatedData = []byte{}
		}
		fc.ContentType = ct
		return signFramedContent(g.signWithLabel, wf, fc, &g.ctx)
	}
}

// protect encodes ac as an MLSMessage with the current epoch's keys of g;
// st is the secret tree to take the sender key from.
func (g *Group) protect(ac *AuthenticatedContent, st *SecretTree) ([]byte, error) {
	m := &MLSMessage{Version: MLS10, WireFormat: ac.WireFormat}
	switch ac.WireFormat {
	case WireFormatPublicMessage:
		pm, err := ProtectPublic(g.suite, ac, g.keys.membershipKey, &g.ctx)
		if err != nil {
			return nil, err
		}
		m.PublicMessage = pm
	case WireFormatPrivateMessage:
		pm, err := ProtectPrivate(g.suite, ac, st, g.keys.senderDataSecret, g.padding(ac))
		if err != nil {
			return nil, err
		}
		m.PrivateMessage = pm
	default:
		return nil, fmt.Errorf("%w: wire format %v", ErrInvalidMessage, ac.WireFormat)
	}
	return m.Marshal(), nil
}

// padding returns the number of padding bytes for ac's content.
func (g *Group) padding(ac *AuthenticatedContent) int {
	block := int(g.config.PaddingBlock)
	if block <= 1 {
		return 0
	}
	n := len(ac.Content.Marshal()) + len(ac.Auth.Signature)
	pad := (block - n%block) % block
	return min(pad, MaxPadding)
}

// Propose sends a proposal by itself (to be committed later by reference,
// by any member) and returns the MLSMessage. The proposal is cached as if
// received, so this client may commit it too.
func (g *Group) Propose(p Proposal) ([]byte, error) {
	defer g.changedState()
	return g.propose(p, nil)
}

// ProposeAdd proposes to add the client of kp.
func (g *Group) ProposeAdd(kp *KeyPackage) ([]byte, error) {
	defer g.changedState()
	return g.Propose(Proposal{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}})
}

// ProposeRemove proposes to remove the member at leaf.
func (g *Group) ProposeRemove(leaf LeafIndex) ([]byte, error) {
	defer g.changedState()
	return g.Propose(Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: leaf}})
}

// ProposeGroupContextExtensions proposes to replace the GroupContext
// extensions by exts.
func (g *Group) ProposeGroupContextExtensions(exts []Extension) ([]byte, error) {
	defer g.changedState()
	return g.Propose(Proposal{Type: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensionsProposal{Extensions: cloneExtensions(exts)}})
}

// ProposeExternalPSK proposes to inject the external PSK id (which every
// member must know, see AddPSK) into the next epoch.
func (g *Group) ProposeExternalPSK(id []byte) ([]byte, error) {
	defer g.changedState()
	p, err := externalPSKProposal(g.suite, id)
	if err != nil {
		return nil, err
	}
	return g.Propose(p)
}

// externalPSKProposal returns a PreSharedKey proposal for the external PSK
// id with a fresh psk_nonce (RFC 9420 §8.4).
func externalPSKProposal(s Suite, id []byte) (Proposal, error) {
	nonce, err := randomBytes(s.HashSize())
	if err != nil {
		return Proposal{}, err
	}
	return Proposal{Type: ProposalPreSharedKey, PreSharedKey: &PreSharedKeyProposal{PSK: PreSharedKeyID{Type: PSKTypeExternal, PSKID: bytes.Clone(id), Nonce: nonce}}}, nil
}

// ProposeResumptionPSK proposes to inject the resumption PSK of a recent
// epoch of this group into the next epoch.
func (g *Group) ProposeResumptionPSK(epoch uint64) ([]byte, error) {
	defer g.changedState()
	nonce, err := randomBytes(g.suite.HashSize())
	if err != nil {
		return nil, err
	}
	return g.Propose(Proposal{Type: ProposalPreSharedKey, PreSharedKey: &PreSharedKeyProposal{PSK: PreSharedKeyID{
		Type: PSKTypeResumption, Usage: ResumptionPSKApplication, GroupID: bytes.Clone(g.ctx.GroupID), Epoch: epoch, Nonce: nonce}}})
}

// ProposeReInit proposes to close the group and restart it with new
// parameters.
func (g *Group) ProposeReInit(groupID []byte, cs CipherSuite, exts []Extension) ([]byte, error) {
	defer g.changedState()
	return g.Propose(Proposal{Type: ProposalReInit, ReInit: &ReInitProposal{GroupID: bytes.Clone(groupID), Version: MLS10, CipherSuite: cs, Extensions: cloneExtensions(exts)}})
}

// ProposeUpdate proposes to replace this client's leaf by one with a fresh
// encryption key.
func (g *Group) ProposeUpdate() ([]byte, error) {
	defer g.changedState()
	return g.proposeUpdate(nil)
}

// ProposeUpdateCredentialTypes is ProposeUpdate with a leaf that supports
// basic, its credential's own type and types from now on (see
// CommitOptions.CredentialTypes).
func (g *Group) ProposeUpdateCredentialTypes(types []CredentialType) ([]byte, error) {
	defer g.changedState()
	if types == nil {
		types = []CredentialType{}
	}
	return g.proposeUpdate(types)
}

func (g *Group) proposeUpdate(types []CredentialType) ([]byte, error) {
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	ln, err := ownLeafTemplate(g.tree.LeafNode(g.self), types, g.ctx.Extensions)
	if err != nil {
		return nil, err
	}
	priv, pub, err := g.suite.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	ln.EncryptionKey = pub
	ln.Source = LeafNodeSourceUpdate
	ln.Lifetime = nil
	ln.ParentHash = nil
	if err := ln.Sign(g.suite, g.sigPriv, g.ctx.GroupID, g.self); err != nil {
		return nil, err
	}
	return g.propose(Proposal{Type: ProposalUpdate, Update: &UpdateProposal{LeafNode: *ln}}, priv)
}

// ownLeafTemplate is a copy of this client's leaf ln for an update or a
// commit path; with types not nil its credential capabilities become
// basic, its own type and types, and must still meet the group's required
// capabilities (exts).
func ownLeafTemplate(ln *LeafNode, types []CredentialType, exts []Extension) (*LeafNode, error) {
	c := ln.Clone()
	if types == nil {
		return c, nil
	}
	c.Capabilities.Credentials = credentialTypeList(c.Credential.Type, types)
	if err := checkRequiredCapabilities(exts, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (g *Group) propose(p Proposal, updatePriv []byte) ([]byte, error) {
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	self := MemberSender(g.self)
	if p.Type == ProposalExternalInit {
		return nil, fmt.Errorf("%w: ExternalInit is only for external commits", ErrInvalidProposal)
	}
	if p.Type == ProposalUpdate && updatePriv == nil {
		return nil, fmt.Errorf("%w: use ProposeUpdate", ErrInvalidProposal)
	}
	if err := g.validateProposal(&p, self, g.ctx.Extensions, true); err != nil {
		return nil, err
	}
	if p.Type == ProposalPreSharedKey {
		if _, err := g.lookupPSK(&p.PreSharedKey.PSK); err != nil {
			return nil, err
		}
	}
	ac, err := g.signContent(ContentProposal, nil, g.handshakeWireFormat())(&FramedContent{Proposal: &p})
	if err != nil {
		return nil, err
	}
	st := g.keys.secretTree.Clone()
	msg, err := g.protect(ac, st)
	if err != nil {
		return nil, err
	}
	ref := ac.ProposalRef(g.suite)
	g.keys.secretTree = st
	g.proposals = append(g.proposals, cachedProposal{ref: ref, proposal: p, sender: self, msgHash: g.suite.Hash(msg)})
	if updatePriv != nil {
		if g.pendingUpdates == nil {
			g.pendingUpdates = map[string][]byte{}
		}
		g.pendingUpdates[string(ref)] = updatePriv
	}
	return msg, nil
}

// AddMembers commits Add proposals for the given KeyPackages (together
// with any pending proposals) and returns the commit and the Welcome.
func (g *Group) AddMembers(kps []*KeyPackage, opts *CommitOptions) (*CommitResult, error) {
	defer g.changedState()
	o := CommitOptions{}
	if opts != nil {
		o = *opts
	}
	o.Proposals = append([]Proposal{}, o.Proposals...)
	for _, kp := range kps {
		o.Proposals = append(o.Proposals, Proposal{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}})
	}
	return g.Commit(&o)
}

// RemoveMembers commits Remove proposals for the given leaves.
func (g *Group) RemoveMembers(leaves []LeafIndex, opts *CommitOptions) (*CommitResult, error) {
	defer g.changedState()
	o := CommitOptions{}
	if opts != nil {
		o = *opts
	}
	o.Proposals = append([]Proposal{}, o.Proposals...)
	for _, l := range leaves {
		o.Proposals = append(o.Proposals, Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: l}})
	}
	return g.Commit(&o)
}

// SelfUpdate commits with a fresh UpdatePath, renewing this client's leaf
// and path keys (forward secrecy and post-compromise security).
func (g *Group) SelfUpdate(opts *CommitOptions) (*CommitResult, error) {
	defer g.changedState()
	o := CommitOptions{}
	if opts != nil {
		o = *opts
	}
	o.ForcePath = true
	return g.Commit(&o)
}

// UpdateGroupContextExtensions commits a GroupContextExtensions proposal
// replacing the extensions by exts.
func (g *Group) UpdateGroupContextExtensions(exts []Extension, opts *CommitOptions) (*CommitResult, error) {
	defer g.changedState()
	o := CommitOptions{}
	if opts != nil {
		o = *opts
	}
	o.Proposals = append(append([]Proposal{}, o.Proposals...), Proposal{Type: ProposalGroupContextExtensions,
		GroupContextExtensions: &GroupContextExtensionsProposal{Extensions: cloneExtensions(exts)}})
	return g.Commit(&o)
}

// selectPending picks the cached proposals a commit by this client can
// cover: valid ones (RFC 9420 §12.2: an invalid proposal by reference is
// left out, not fatal) that the IdentityProvider accepts, without the
// client's own Updates, preferring a Remove over Updates of the same leaf
// and the latest Update otherwise. An Add is left out when its client is
// a member, when it would bring back a member this commit removes (the
// same signature key or credential: removal evasion), when a member this
// commit removes proposed it, or when its keys are already in the tree.
//
// extra are the proposals the commit covers by value: pending proposals
// that would conflict with them are left out.
func (g *Group) selectPending(extra []Proposal) []resolvedProposal {
	removed := map[LeafIndex]bool{}
	lastUpdate := map[LeafIndex]int{}
	lastGCE := -1
	seenRemove := map[LeafIndex]bool{}
	seenAdd := map[string]bool{}
	seenPSK := map[string]bool{}
	extraGCE := false
	for _, p := range extra {
		switch {
		case p.Type == ProposalRemove && p.Remove != nil:
			removed[p.Remove.Removed] = true
			seenRemove[p.Remove.Removed] = true
		case p.Type == ProposalAdd && p.Add != nil:
			seenAdd[string(p.Add.KeyPackage.LeafNode.SignatureKey)] = true
		case p.Type == ProposalPreSharedKey && p.PreSharedKey != nil:
			seenPSK[string(p.PreSharedKey.PSK.Marshal())] = true
		case p.Type == ProposalGroupContextExtensions:
			extraGCE = true
		}
	}
	hasAdd := false
	for i, cp := range g.proposals {
		switch cp.proposal.Type {
		case ProposalRemove:
			if l := cp.proposal.Remove.Removed; l != g.self && g.tree.LeafNode(l) != nil {
				removed[l] = true
			}
		case ProposalUpdate:
			lastUpdate[cp.sender.LeafIndex] = i
		case ProposalGroupContextExtensions:
			lastGCE = i
		case ProposalAdd:
			hasAdd = true
		}
	}
	var treeKeys map[string]bool
	if hasAdd {
		treeKeys = g.tree.publicKeys()
	}
	var list []resolvedProposal
	var reinit *resolvedProposal
	for i := range g.proposals {
		cp := &g.proposals[i]
		p := &cp.proposal
		exts := g.ctx.Extensions
		if lastGCE >= 0 && !extraGCE {
			exts = g.proposals[lastGCE].proposal.GroupContextExtensions.Extensions
		}
		if g.validateProposalIn(p, cp.sender, exts, true, removed) != nil || g.checkProposalLeaf(p, cp.sender, exts) != nil {
			continue
		}
		rp := resolvedProposal{proposal: p, sender: cp.sender, ref: cp.ref}
		switch p.Type {
		case ProposalUpdate:
			l := cp.sender.LeafIndex
			if l == g.self || removed[l] || lastUpdate[l] != i {
				continue
			}
		case ProposalRemove:
			l := p.Remove.Removed
			if l == g.self || seenRemove[l] {
				continue
			}
			seenRemove[l] = true
		case ProposalAdd:
			ln := &p.Add.KeyPackage.LeafNode
			k := string(ln.SignatureKey)
			if seenAdd[k] || treeKeys[k] || treeKeys[string(ln.EncryptionKey)] || treeKeys[string(p.Add.KeyPackage.InitKey)] {
				continue
			}
			if cp.sender.Type == SenderMember && removed[cp.sender.LeafIndex] {
				continue
			}
			if g.readdsRemoved(ln, removed) {
				continue
			}
			seenAdd[k] = true
		case ProposalPreSharedKey:
			k := string(p.PreSharedKey.PSK.Marshal())
			if seenPSK[k] {
				continue
			}
			if _, err := g.lookupPSK(&p.PreSharedKey.PSK); err != nil {
				continue
			}
			seenPSK[k] = true
		case ProposalGroupContextExtensions:
			if i != lastGCE || extraGCE {
				continue
			}
		case ProposalReInit:
			reinit = &rp
			continue
		case ProposalExternalInit:
			continue
		}
		list = append(list, rp)
	}
	if len(list) == 0 && len(extra) == 0 && reinit != nil {
		list = append(list, *reinit)
	}
	return list
}

// readdsRemoved reports whether ln, the leaf of an Add, belongs to a
// member that removed lists: the same signature key or an equal
// credential.
func (g *Group) readdsRemoved(ln *LeafNode, removed map[LeafIndex]bool) bool {
	for l := range removed {
		o := g.tree.LeafNode(l)
		if o != nil && (bytes.Equal(o.SignatureKey, ln.SignatureKey) || o.Credential.Equal(&ln.Credential)) {
			return true
		}
	}
	return false
}

// fitPending reduces pending, the proposals by reference selectPending
// chose, to a list that validates together with own (the proposals by
// value): when the whole list does not, it keeps each pending proposal
// only if the list still validates with it. A pending proposal that became
// invalid so never blocks the commit.
func (g *Group) fitPending(pending, own []resolvedProposal, self Sender) []resolvedProposal {
	valid := func(list []resolvedProposal) bool {
		if g.validateProposalList(list, self, false, true) != nil {
			return false
		}
		ng, res, err := g.applyToCopy(list)
		if err != nil {
			return false
		}
		defer wipeDiscarded(ng, g)
		return ng.tree.verifyUniqueKeys() == nil && ng.tree.checkChangedCredentialTypes(g.tree, res.changedLeaves(g.self, false)) == nil
	}
	if len(pending) == 0 || valid(append(slices.Clip(pending), own...)) {
		return pending
	}
	var kept []resolvedProposal
	for _, rp := range pending {
		if try := append(slices.Clip(kept), rp); valid(append(try, own...)) {
			kept = try
		}
	}
	return kept
}

// Commit commits the pending proposals and opts.Proposals. The new epoch
// is not entered yet: the commit is kept as pending until
// MergePendingCommit (after the delivery service accepted it) or
// DiscardPendingCommit. Processing the commit's own message through
// ProcessMessage merges it too.
func (g *Group) Commit(opts *CommitOptions) (*CommitResult, error) {
	defer g.changedState()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	if opts == nil {
		opts = &CommitOptions{}
	}
	s := g.suite
	self := MemberSender(g.self)
	var own []resolvedProposal
	for i := range opts.Proposals {
		p := opts.Proposals[i]
		if p.Type == ProposalUpdate {
			return nil, fmt.Errorf("%w: a commit cannot cover the committer's own update", ErrInvalidProposal)
		}
		own = append(own, resolvedProposal{proposal: &p, sender: self})
	}
	var list []resolvedProposal
	if !opts.SkipPending {
		list = g.fitPending(g.selectPending(opts.Proposals), own, self)
	}
	list = append(list, own...)
	if err := g.validateProposalList(list, self, false, true); err != nil {
		return nil, err
	}
	// The PSKs must be known before anything is built.
	pskIDs := pskIDsOf(list)
	pskSecret, err := g.pskSecret(pskIDs)
	if err != nil {
		return nil, err
	}
	ng, res, err := g.applyToCopy(list)
	if err != nil {
		return nil, err
	}
	if err := g.checkCommitLeaves(ng, res); err != nil {
		return nil, err
	}
	usePath := len(list) == 0 || res.pathRequired || opts.ForcePath || opts.CredentialTypes != nil
	ng.ctx.Epoch = g.ctx.Epoch + 1
	var pu *PathUpdate
	var commitSecret []byte
	commit := &Commit{Proposals: make([]ProposalOrRef, 0, len(list))}
	for _, rp := range list {
		if rp.ref != nil {
			commit.Proposals = append(commit.Proposals, ProposalOrRef{Type: ProposalOrRefReference, Reference: rp.ref})
		} else {
			commit.Proposals = append(commit.Proposals, ProposalOrRef{Type: ProposalOrRefProposal, Proposal: rp.proposal})
		}
	}
	if usePath {
		tmpl, err := ownLeafTemplate(ng.tree.LeafNode(g.self), opts.CredentialTypes, ng.ctx.Extensions)
		if err != nil {
			return nil, err
		}
		pu, err = ng.tree.generatePath(s, g.self, tmpl, g.signWithLabel, g.ctx.GroupID)
		if err != nil {
			return nil, fmt.Errorf("mls: commit path: %w", err)
		}
		defer pu.Wipe()
		ng.ctx.TreeHash = ng.tree.TreeHash(s)
		up, err := ng.tree.EncryptPath(s, pu, ng.ctx.Marshal(), res.added)
		if err != nil {
			return nil, fmt.Errorf("mls: commit path: %w", err)
		}
		commit.Path = up
		commitSecret = pu.CommitSecret
		ng.priv = pu.Keys.Clone()
	} else {
		ng.ctx.TreeHash = ng.tree.TreeHash(s)
	}
	ng.priv.Prune(ng.tree)
	if err := verifyUniqueKeysAfterCommit(ng.tree); err != nil {
		return nil, err
	}
	if err := ng.tree.checkChangedCredentialTypes(g.tree, res.changedLeaves(g.self, usePath)); err != nil && !hostileCommitter {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}

	wf := g.handshakeWireFormat()
	ac, err := g.signContent(ContentCommit, opts.AuthenticatedData, wf)(&FramedContent{Commit: commit})
	if err != nil {
		return nil, err
	}
	confirmed, err := ConfirmedTranscriptHash(s, g.interim, ac)
	if err != nil {
		return nil, err
	}
	ng.ctx.ConfirmedTranscriptHash = confirmed
	joiner, err := DeriveJoinerSecret(s, g.keys.initSecret, commitSecret, ng.ctx.Marshal())
	if err != nil {
		return nil, err
	}
	defer clear(joiner)
	oldST := g.keys.secretTree.Clone()
	ng.retire(g, nil)
	if err := ng.installEpoch(joiner, pskSecret); err != nil {
		return nil, err
	}
	tag := ConfirmationTag(s, ng.keys.confirmationKey, confirmed)
	ac.Auth.ConfirmationTag = tag
	ng.confirmationTag = tag
	ng.interim = InterimTranscriptHash(s, confirmed, tag)
	ng.proposals = nil
	ng.pendingUpdates = map[string][]byte{}
	if res.reinit != nil {
		ng.reinit = res.reinit
	}

	msg, err := g.protect(ac, oldST)
	if err != nil {
		return nil, err
	}
	if len(ng.past) > 0 && ng.past[len(ng.past)-1].epoch == g.ctx.Epoch {
		ng.past[len(ng.past)-1].secretTree = oldST.Clone()
	}

	result := &CommitResult{Message: msg, Added: res.added, Removed: res.removed, Epoch: ng.ctx.Epoch}
	if !opts.OmitGroupInfo {
		gi, err := ng.groupInfo(true, true)
		if err != nil {
			return nil, err
		}
		result.GroupInfo = (&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}).Marshal()
	}
	if len(res.added) > 0 {
		wgi, err := ng.groupInfo(!opts.OmitRatchetTree, false, opts.WelcomeExtensions...)
		if err != nil {
			return nil, err
		}
		recipients := make([]WelcomeRecipient, len(res.added))
		for i, l := range res.added {
			recipients[i] = WelcomeRecipient{KeyPackage: res.addedKPs[i]}
			if pu != nil {
				if _, ps, ok := pu.PathSecretFor(l); ok {
					recipients[i].PathSecret = ps
				}
			}
		}
		w, err := NewWelcome(s, wgi, joiner, pskSecret, pskIDs, recipients)
		for _, r := range recipients {
			clear(r.PathSecret)
		}
		if err != nil {
			return nil, err
		}
		result.Welcome = (&MLSMessage{Version: MLS10, WireFormat: WireFormatWelcome, Welcome: w}).Marshal()
	}
	// Success: the old epoch's sender ratchet moved on, and the new state
	// waits to be merged.
	g.keys.secretTree = oldST
	g.pending = &pendingCommit{result: result, state: ng}
	return cloneCommitResult(result), nil
}

func cloneCommitResult(r *CommitResult) *CommitResult {
	c := *r
	c.Message = bytes.Clone(r.Message)
	c.Welcome = bytes.Clone(r.Welcome)
	c.GroupInfo = bytes.Clone(r.GroupInfo)
	c.Added = append([]LeafIndex(nil), r.Added...)
	c.Removed = append([]Member(nil), r.Removed...)
	return &c
}

// verifyUniqueKeysAfterCommit checks that no encryption or signature key
// appears twice in the tree after a commit (RFC 9420 §7.3, §12.4.2).
func verifyUniqueKeysAfterCommit(t *RatchetTree) error {
	if err := t.verifyUniqueKeys(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	return nil
}

// groupInfo returns a signed GroupInfo for the current epoch, with the
// ratchet tree and the external public key if asked, and extra extensions.
func (g *Group) groupInfo(withTree, withExternalPub bool, extra ...Extension) (*GroupInfo, error) {
	gi := &GroupInfo{
		GroupContext:    cloneGroupContext(&g.ctx),
		Extensions:      []Extension{},
		ConfirmationTag: bytes.Clone(g.confirmationTag),
		Signer:          g.self,
	}
	if withTree {
		gi.Extensions = append(gi.Extensions, Extension{Type: ExtensionRatchetTree, Data: g.tree.Marshal()})
	}
	if withExternalPub {
		_, pub, err := ExternalKeyPair(g.suite, g.keys.externalSecret)
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, Extension{Type: ExtensionExternalPub, Data: AppendOpaque(nil, pub)})
	}
	gi.Extensions = append(gi.Extensions, cloneExtensions(extra)...)
	if err := gi.Sign(g.suite, g.sigPriv); err != nil {
		return nil, err
	}
	return gi, nil
}

// GroupInfo returns a signed GroupInfo MLSMessage for the current epoch,
// with the ratchet tree and the external public key, for external joins.
func (g *Group) GroupInfo() ([]byte, error) {
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	gi, err := g.groupInfo(true, true)
	if err != nil {
		return nil, err
	}
	return (&MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}).Marshal(), nil
}

// PendingCommit returns the pending commit's result, or nil.
func (g *Group) PendingCommit() *CommitResult {
	if g.pending == nil {
		return nil
	}
	return cloneCommitResult(g.pending.result)
}

// MergePendingCommit enters the epoch of this client's pending commit. Call
// it only once the delivery service accepted the commit.
func (g *Group) MergePendingCommit() (*CommitResult, error) {
	defer g.changedState()
	if g.pending == nil {
		return nil, ErrNoPendingCommit
	}
	p := g.pending
	ns := p.state.clone()
	// Keep the old epoch's receive state as it is now: messages may have
	// been read since the commit was made.
	if n := len(ns.past); n > 0 && ns.past[n-1].epoch == g.ctx.Epoch {
		ns.past[n-1].secretTree = g.keys.secretTree.Clone()
	}
	ns.psks = cloneKeyMap(g.psks)
	ns.lastOwnCommit = g.suite.Hash(p.result.Message)
	ns.pending = nil
	wipeSuperseded(g)
	wipeDiscarded(p.state, ns) // its own copies of what ns now holds
	*g = *ns
	return cloneCommitResult(p.result), nil
}

// DiscardPendingCommit drops this client's pending commit (for example when
// the delivery service refused it because another commit won the epoch).
func (g *Group) DiscardPendingCommit() error {
	defer g.changedState()
	if g.pending == nil {
		return ErrNoPendingCommit
	}
	wipeDiscarded(g.pending.state, g)
	g.pending = nil
	return nil
}

// retire keeps the current epoch of old (whose keys ng copied) as a past
// epoch of ng, for late application messages, and drops the oldest past
// epochs beyond the configured number. st, if not nil, is the secret tree
// to keep; otherwise ng's copy of old's is kept.
func (ng *Group) retire(old *Group, st *SecretTree) {
	if st == nil {
		st = ng.keys.secretTree
	}
	keep := ng.config.maxPastEpochs()
	if keep == 0 {
		for _, p := range ng.past {
			p.secretTree.Clear()
		}
		if st != old.keys.secretTree {
			st.Clear()
		}
		ng.past = nil
		return
	}
	ng.past = append(ng.past, &pastEpoch{
		epoch:            old.ctx.Epoch,
		ctx:              cloneGroupContext(&old.ctx),
		senderDataSecret: old.keys.senderDataSecret,
		secretTree:       st,
		tree:             old.tree,
	})
	if drop := len(ng.past) - keep; drop > 0 {
		for _, p := range ng.past[:drop] {
			p.secretTree.Clear() // ng's own copy
		}
		ng.past = append([]*pastEpoch(nil), ng.past[drop:]...)
	}
}

// This file checks proposals one by one (RFC 9420 §12.1) and as the list a
// Commit covers (§12.2), and applies a list to a copy of the group (§12.3).

// resolvedProposal is one proposal of a commit, with who sent it and, for
// proposals committed by reference, its ref.
type resolvedProposal struct {
	proposal *Proposal
	sender   Sender
	ref      ProposalRef // nil when committed by value
}

// applied is what applying a proposal list changed.
type applied struct {
	added        []LeafIndex
	addedKPs     []*KeyPackage
	removed      []Member
	updated      []LeafIndex
	psks         []PreSharedKeyID
	externalInit *ExternalInitProposal
	reinit       *ReInitProposal
	gce          bool
	pathRequired bool
	selfRemoved  bool
	selfUpdate   ProposalRef // my Update proposal, committed by another member
}

// changedLeaves lists the leaves a commit changes: those its proposals
// added or updated and, with a path, the committer's.
func (res *applied) changedLeaves(committer LeafIndex, path bool) []LeafIndex {
	out := append(slices.Clip(res.added), res.updated...)
	if path {
		out = append(out, committer)
	}
	return out
}

// proposalRef returns the ProposalRef of a proposal sent in ac.
func proposalRef(s Suite, ac *AuthenticatedContent) ProposalRef {
	return ProposalRef(RefHash(s, "MLS 1.0 Proposal Reference", ac.Marshal()))
}

// pathRequiredType reports whether a proposal type requires an UpdatePath
// in the commit that covers it (RFC 9420 §17.4).
func pathRequiredType(t ProposalType) bool {
	switch t {
	case ProposalAdd, ProposalPreSharedKey, ProposalReInit:
		return false
	}
	return true
}

// validateProposal checks one proposal sent by sender against the current
// state of g, with the GroupContext extensions exts that will be in force
// (RFC 9420 §12.1). sending is true for proposals this client makes, which
// get the strict checks (lifetimes).
func (g *Group) validateProposal(p *Proposal, sender Sender, exts []Extension, sending bool) error {
	return g.validateProposalIn(p, sender, exts, sending, nil)
}

// validateProposalIn is validateProposal for a proposal of a commit that
// removes the leaves in removed: a GroupContextExtensions proposal need
// not suit them (RFC 9420 §12.1.7).
func (g *Group) validateProposalIn(p *Proposal, sender Sender, exts []Extension, sending bool, removed map[LeafIndex]bool) error {
	s := g.suite
	switch p.Type {
	case ProposalAdd:
		if p.Add == nil {
			return fmt.Errorf("%w: empty add", ErrInvalidProposal)
		}
		kp := &p.Add.KeyPackage
		if err := validateKeyPackage(s, kp, time.Time{}); err != nil {
			return fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
		}
		if err := g.policy.checkLifetime(&kp.LeafNode, sending); err != nil {
			return fmt.Errorf("%w: add: %w: %w", ErrInvalidProposal, ErrInvalidKeyPackage, err)
		}
		if err := checkRequiredCapabilities(exts, &kp.LeafNode); err != nil {
			return fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
		}
		if err := g.checkCredentialSupport(&kp.LeafNode); err != nil {
			return fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
		}
	case ProposalUpdate:
		if p.Update == nil {
			return fmt.Errorf("%w: empty update", ErrInvalidProposal)
		}
		if sender.Type != SenderMember {
			return fmt.Errorf("%w: update from a non-member", ErrInvalidProposal)
		}
		cur := g.tree.LeafNode(sender.LeafIndex)
		if cur == nil {
			return fmt.Errorf("%w: update from blank leaf %d", ErrInvalidProposal, sender.LeafIndex)
		}
		ln := &p.Update.LeafNode
		if err := validateLeafNodeStandalone(s, ln, LeafNodeSourceUpdate, g.ctx.GroupID, sender.LeafIndex, time.Time{}); err != nil {
			return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
		if bytes.Equal(ln.EncryptionKey, cur.EncryptionKey) {
			return fmt.Errorf("%w: update keeps the encryption key", ErrInvalidProposal)
		}
		if err := checkRequiredCapabilities(exts, ln); err != nil {
			return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
		if err := g.checkCredentialSupport(ln); err != nil {
			return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
	case ProposalRemove:
		if p.Remove == nil {
			return fmt.Errorf("%w: empty remove", ErrInvalidProposal)
		}
		if g.tree.LeafNode(p.Remove.Removed) == nil {
			return fmt.Errorf("%w: remove of blank leaf %d", ErrInvalidProposal, p.Remove.Removed)
		}
	case ProposalPreSharedKey:
		if p.PreSharedKey == nil {
			return fmt.Errorf("%w: empty psk", ErrInvalidProposal)
		}
		id := &p.PreSharedKey.PSK
		if len(id.Nonce) != s.HashSize() {
			return fmt.Errorf("%w: psk nonce of %d bytes", ErrInvalidProposal, len(id.Nonce))
		}
		if id.Type == PSKTypeResumption && id.Usage != ResumptionPSKApplication && !g.resumes(id) {
			return fmt.Errorf("%w: resumption psk with usage %d in a proposal", ErrInvalidProposal, id.Usage)
		}
	case ProposalReInit:
		if p.ReInit == nil {
			return fmt.Errorf("%w: empty reinit", ErrInvalidProposal)
		}
		if p.ReInit.Version < g.ctx.Version {
			return fmt.Errorf("%w: reinit to an older version", ErrInvalidProposal)
		}
	case ProposalExternalInit:
		if p.ExternalInit == nil {
			return fmt.Errorf("%w: empty external init", ErrInvalidProposal)
		}
	case ProposalGroupContextExtensions:
		if p.GroupContextExtensions == nil {
			return fmt.Errorf("%w: empty group context extensions", ErrInvalidProposal)
		}
		newExts := p.GroupContextExtensions.Extensions
		if err := checkGroupExtensions(s, newExts); err != nil {
			return err
		}
		for _, m := range g.tree.Members() {
			if removed[m] {
				continue
			}
			if err := checkRequiredCapabilities(newExts, g.tree.LeafNode(m)); err != nil {
				return fmt.Errorf("%w: leaf %d: %w", ErrInvalidProposal, m, err)
			}
		}
	default:
		return fmt.Errorf("%w: unsupported proposal type %v", ErrInvalidProposal, p.Type)
	}
	return nil
}

// checkCredentialSupport checks that ln supports every credential type in
// use in the group and that every member supports ln's credential type.
func (g *Group) checkCredentialSupport(ln *LeafNode) error {
	for _, m := range g.tree.Members() {
		o := g.tree.LeafNode(m)
		if !slices.Contains(ln.Capabilities.Credentials, o.Credential.Type) {
			return fmt.Errorf("%w: credential type %v in use is not supported", ErrInvalidLeafNode, o.Credential.Type)
		}
		if !slices.Contains(o.Capabilities.Credentials, ln.Credential.Type) {
			return fmt.Errorf("%w: leaf %d does not support credential type %v", ErrInvalidLeafNode, m, ln.Credential.Type)
		}
	}
	return nil
}

// validateProposalList checks the list of proposals of a commit sent by
// committer (RFC 9420 §12.2). external is true for an external commit.
func (g *Group) validateProposalList(list []resolvedProposal, committer Sender, external bool, sending bool) error {
	exts := g.ctx.Extensions
	var counts [8]int
	for _, rp := range list {
		t := rp.proposal.Type
		if int(t) < len(counts) {
			counts[t]++
		}
		if t == ProposalGroupContextExtensions && rp.proposal.GroupContextExtensions != nil {
			exts = rp.proposal.GroupContextExtensions.Extensions
		}
	}
	if external {
		if counts[ProposalExternalInit] != 1 {
			return fmt.Errorf("%w: external commit with %d ExternalInit proposals", ErrInvalidCommit, counts[ProposalExternalInit])
		}
		if counts[ProposalRemove] > 1 {
			return fmt.Errorf("%w: external commit with %d Remove proposals", ErrInvalidCommit, counts[ProposalRemove])
		}
		for _, rp := range list {
			switch rp.proposal.Type {
			case ProposalExternalInit, ProposalRemove, ProposalPreSharedKey:
			default:
				return fmt.Errorf("%w: external commit with a %v proposal", ErrInvalidCommit, rp.proposal.Type)
			}
			if rp.ref != nil {
				return fmt.Errorf("%w: external commit with a proposal by reference", ErrInvalidCommit)
			}
		}
	} else {
		if counts[ProposalExternalInit] != 0 {
			return fmt.Errorf("%w: ExternalInit in a member commit", ErrInvalidCommit)
		}
		if counts[ProposalReInit] > 0 && len(list) != 1 {
			return fmt.Errorf("%w: ReInit together with other proposals", ErrInvalidCommit)
		}
		if counts[ProposalGroupContextExtensions] > 1 {
			return fmt.Errorf("%w: several GroupContextExtensions proposals", ErrInvalidCommit)
		}
	}
	touched := map[LeafIndex]bool{}
	removedSig := map[string]bool{}
	addSig := map[string]bool{}
	pskIDs := map[string]bool{}
	removing := map[LeafIndex]bool{}
	for _, rp := range list {
		if rp.proposal.Type == ProposalRemove && rp.proposal.Remove != nil {
			removing[rp.proposal.Remove.Removed] = true
		}
	}
	for _, rp := range list {
		p := rp.proposal
		if err := g.validateProposalIn(p, rp.sender, exts, sending, removing); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		switch p.Type {
		case ProposalUpdate:
			if committer.Type == SenderMember && rp.sender.LeafIndex == committer.LeafIndex {
				return fmt.Errorf("%w: commit covers the committer's own update", ErrInvalidCommit)
			}
			if touched[rp.sender.LeafIndex] {
				return fmt.Errorf("%w: several updates or removes of leaf %d", ErrInvalidCommit, rp.sender.LeafIndex)
			}
			touched[rp.sender.LeafIndex] = true
		case ProposalRemove:
			l := p.Remove.Removed
			if committer.Type == SenderMember && l == committer.LeafIndex {
				return fmt.Errorf("%w: commit removes the committer", ErrInvalidCommit)
			}
			if touched[l] {
				return fmt.Errorf("%w: several updates or removes of leaf %d", ErrInvalidCommit, l)
			}
			touched[l] = true
			removedSig[string(g.tree.LeafNode(l).SignatureKey)] = true
		case ProposalPreSharedKey:
			k := string(p.PreSharedKey.PSK.Marshal())
			if pskIDs[k] {
				return fmt.Errorf("%w: the same PSK twice", ErrInvalidCommit)
			}
			pskIDs[k] = true
		}
	}
	// Adds: no client twice, and no client already in the group unless it
	// is removed by the same commit (the tree's key index knows the
	// members' signature keys).
	inGroup := func(k string) bool { return g.tree.keyIndex().count(k, pickSig) > 0 }
	for _, rp := range list {
		if rp.proposal.Type != ProposalAdd {
			continue
		}
		k := string(rp.proposal.Add.KeyPackage.LeafNode.SignatureKey)
		if addSig[k] {
			return fmt.Errorf("%w: the same client added twice", ErrInvalidCommit)
		}
		addSig[k] = true
		if inGroup(k) && !removedSig[k] {
			return fmt.Errorf("%w: added client is already a member", ErrInvalidCommit)
		}
	}
	return nil
}

// applyProposals applies a validated list to g, which must be a private
// copy (RFC 9420 §12.3). The tree and GroupContext extensions change; the
// epoch does not.
func (g *Group) applyProposals(list []resolvedProposal) (*applied, error) {
	res := &applied{}
	for _, rp := range list {
		if pathRequiredType(rp.proposal.Type) {
			res.pathRequired = true
		}
		if rp.proposal.Type == ProposalGroupContextExtensions {
			g.ctx.Extensions = cloneExtensions(rp.proposal.GroupContextExtensions.Extensions)
			res.gce = true
		}
	}
	for _, rp := range list {
		if rp.proposal.Type != ProposalUpdate {
			continue
		}
		l := rp.sender.LeafIndex
		ln := rp.proposal.Update.LeafNode.Clone()
		if err := g.tree.UpdateLeaf(l, ln); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		res.updated = append(res.updated, l)
		if l == g.self {
			res.selfUpdate = rp.ref
		}
	}
	for _, rp := range list {
		if rp.proposal.Type != ProposalRemove {
			continue
		}
		l := rp.proposal.Remove.Removed
		ln := g.tree.LeafNode(l)
		if ln == nil {
			return nil, fmt.Errorf("%w: remove of blank leaf %d", ErrInvalidCommit, l)
		}
		res.removed = append(res.removed, leafMember(l, ln))
		if err := g.tree.RemoveLeaf(l); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		if l == g.self {
			res.selfRemoved = true
		}
	}
	for _, rp := range list {
		if rp.proposal.Type != ProposalAdd {
			continue
		}
		kp := rp.proposal.Add.KeyPackage
		ln := kp.LeafNode.Clone()
		l, err := g.tree.AddLeaf(ln)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		res.added = append(res.added, l)
		res.addedKPs = append(res.addedKPs, &kp)
	}
	for _, rp := range list {
		switch rp.proposal.Type {
		case ProposalPreSharedKey:
			res.psks = append(res.psks, rp.proposal.PreSharedKey.PSK)
		case ProposalExternalInit:
			res.externalInit = rp.proposal.ExternalInit
		case ProposalReInit:
			res.reinit = rp.proposal.ReInit
		}
	}
	return res, nil
}

// pskIDsOf lists the PSKs that the PreSharedKey proposals of list name, in
// order.
func pskIDsOf(list []resolvedProposal) []PreSharedKeyID {
	var ids []PreSharedKeyID
	for _, rp := range list {
		if rp.proposal.Type == ProposalPreSharedKey {
			ids = append(ids, rp.proposal.PreSharedKey.PSK)
		}
	}
	return ids
}

// applyToCopy applies list to a copy of g without a pending commit: the
// start of the next epoch's state. g itself is not changed.
func (g *Group) applyToCopy(list []resolvedProposal) (*Group, *applied, error) {
	ng := g.clone()
	ng.pending = nil
	res, err := ng.applyProposals(list)
	if err != nil {
		return nil, nil, err
	}
	return ng, res, nil
}

// pskSecret looks up the PSKs of ids and combines them (RFC 9420 §8.4).
// It returns nil when ids is empty.
func (g *Group) pskSecret(ids []PreSharedKeyID) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([][]byte, len(ids))
	for i, id := range ids {
		psk, err := g.lookupPSK(&id)
		if err != nil {
			return nil, err
		}
		psks[i] = psk
	}
	return PSKSecret(g.suite, ids, psks)
}

func (g *Group) lookupPSK(id *PreSharedKeyID) ([]byte, error) {
	switch id.Type {
	case PSKTypeExternal:
		if psk, ok := g.psks[string(id.PSKID)]; ok {
			return psk, nil
		}
		return nil, fmt.Errorf("%w: external psk %x", ErrUnknownPSK, id.PSKID)
	case PSKTypeResumption:
		if g.resumes(id) {
			return g.resume.psk, nil
		}
		if !bytes.Equal(id.GroupID, g.ctx.GroupID) {
			return nil, fmt.Errorf("%w: resumption psk of another group", ErrUnknownPSK)
		}
		if psk, ok := g.resumption[id.Epoch]; ok {
			return psk, nil
		}
		return nil, fmt.Errorf("%w: resumption psk of epoch %d", ErrUnknownPSK, id.Epoch)
	}
	return nil, fmt.Errorf("%w: psk type %d", ErrUnknownPSK, id.Type)
}
