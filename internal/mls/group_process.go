package mls

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"slices"
	"time"
)

// This file receives messages (RFC 9420 §6, §12.4.2): application data,
// proposals and commits, as PublicMessage or PrivateMessage, and sends
// application data (Protect). A message that fails leaves the group as it
// was: secret-tree changes are undone, commits are applied to a copy.

// MessageKind says what a processed message carried.
type MessageKind uint8

// The kinds of processed messages.
const (
	KindApplication MessageKind = iota + 1
	KindProposal
	KindCommit
)

func (k MessageKind) String() string {
	switch k {
	case KindApplication:
		return "application"
	case KindProposal:
		return "proposal"
	case KindCommit:
		return "commit"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Received is the outcome of ProcessMessage.
type Received struct {
	Kind MessageKind
	// Epoch is the epoch the message was sent in.
	Epoch uint64
	// SenderType and Sender identify the sender (for an external commit,
	// the joiner at its new leaf; for an external sender, its credential
	// and signature key from external_senders, with Leaf unused).
	SenderType SenderType
	Sender     Member
	// AuthenticatedData is the sender's clear authenticated data.
	AuthenticatedData []byte

	// Application data.
	Plaintext []byte

	// Proposal (KindProposal).
	Proposal    *Proposal
	ProposalRef ProposalRef

	// Commit (KindCommit): the epoch entered and how membership changed.
	NewEpoch uint64
	Added    []Member
	Removed  []Member
	Updated  []Member
	// OwnCommit is set when the message was this client's own commit: a
	// pending one that is now merged, or one merged before (no change).
	OwnCommit bool
	// OwnProposal is set when the message was this client's own proposal
	// of the current epoch, echoed back (no change).
	OwnProposal bool
	// SelfRemoved is set when the commit removed this client.
	SelfRemoved bool
	// ReInit is set when the commit closed the group for reinitialization.
	ReInit *ReInitProposal
	// DiscardedPendingCommit is set when another member's commit won the
	// epoch and this client's pending commit was dropped.
	DiscardedPendingCommit bool
	// Commit is what a received commit did, as the CommitInspector saw it
	// (nil for this client's own commits).
	Commit *StagedCommit
}

// Protect encrypts application data for the group as a PrivateMessage
// and returns the MLSMessage bytes. authenticatedData travels in clear but
// authenticated.
func (g *Group) Protect(plaintext, authenticatedData []byte) ([]byte, error) {
	return g.protectApplication(func() (*AuthenticatedContent, error) {
		return g.signContent(ContentApplication, authenticatedData, WireFormatPrivateMessage)(&FramedContent{ApplicationData: bytes.Clone(plaintext)})
	})
}

// ProcessMessage processes one MLSMessage received for the group. Commits
// for another epoch fail with ErrWrongEpoch. The group's Policy decides on
// what the message brings: a refused leaf fails with ErrCredentialRefused,
// a refused proposal with ErrProposalRefused (it is not kept), a refused
// commit with ErrCommitRefused. On error the group is unchanged.
func (g *Group) ProcessMessage(b []byte) (rec *Received, err error) {
	before := g.unsaved
	defer func() {
		if err == nil && g.unsaved == before && rec != nil && rec.Kind == KindApplication {
			g.movedRatchets(before)
		} else {
			g.changedState()
		}
	}()
	m, err := ParseMLSMessage(b)
	if err != nil {
		return nil, err
	}
	if g.pending != nil && bytes.Equal(b, g.pending.result.Message) {
		res, err := g.MergePendingCommit()
		if err != nil {
			return nil, err
		}
		return &Received{Kind: KindCommit, Epoch: res.Epoch - 1, NewEpoch: res.Epoch, SenderType: SenderMember,
			Sender: g.mustMember(g.self), OwnCommit: true, Removed: res.Removed, Added: g.membersAt(res.Added)}, nil
	}
	h := g.suite.Hash(b)
	if g.lastOwnCommit != nil && subtle.ConstantTimeCompare(h, g.lastOwnCommit) == 1 {
		return &Received{Kind: KindCommit, Epoch: g.ctx.Epoch - 1, NewEpoch: g.ctx.Epoch, SenderType: SenderMember,
			Sender: g.mustMember(g.self), OwnCommit: true}, nil
	}
	for _, cp := range g.proposals {
		if cp.msgHash != nil && subtle.ConstantTimeCompare(h, cp.msgHash) == 1 {
			p, err := ParseProposal(cp.proposal.Marshal())
			if err != nil {
				return nil, err
			}
			return &Received{Kind: KindProposal, Epoch: g.ctx.Epoch, SenderType: SenderMember, Sender: g.mustMember(g.self),
				Proposal: p, ProposalRef: bytes.Clone(cp.ref), OwnProposal: true}, nil
		}
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		return g.processPublic(m.PublicMessage)
	case WireFormatPrivateMessage:
		return g.processPrivate(m.PrivateMessage)
	default:
		return nil, fmt.Errorf("%w: %v is not a group message", ErrInvalidMessage, m.WireFormat)
	}
}

func (g *Group) mustMember(l LeafIndex) Member {
	m, _ := g.Member(l)
	return m
}

func (g *Group) membersAt(ls []LeafIndex) []Member {
	var out []Member
	for _, l := range ls {
		if m, ok := g.Member(l); ok {
			out = append(out, m)
		}
	}
	return out
}

func (g *Group) processPublic(pm *PublicMessage) (*Received, error) {
	c := &pm.Content
	if !bytes.Equal(c.GroupID, g.ctx.GroupID) {
		return nil, ErrWrongGroup
	}
	if c.Epoch != g.ctx.Epoch {
		return nil, fmt.Errorf("%w: %v for epoch %d, group is at epoch %d", ErrWrongEpoch, c.ContentType, c.Epoch, g.ctx.Epoch)
	}
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	ac, err := UnprotectPublic(g.suite, pm, g.keys.membershipKey, &g.ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if err := g.verifySender(ac); err != nil {
		return nil, err
	}
	return g.dispatch(ac, nil)
}

// verifySender checks the content signature of ac with the sender's key in
// the current epoch.
func (g *Group) verifySender(ac *AuthenticatedContent) error {
	c := &ac.Content
	var pub []byte
	switch c.Sender.Type {
	case SenderMember:
		ln := g.tree.LeafNode(c.Sender.LeafIndex)
		if ln == nil {
			return fmt.Errorf("%w: sender leaf %d is blank", ErrInvalidMessage, c.Sender.LeafIndex)
		}
		pub = ln.SignatureKey
	case SenderNewMemberCommit:
		if c.ContentType != ContentCommit || c.Commit == nil || c.Commit.Path == nil {
			return fmt.Errorf("%w: external commit without a path", ErrInvalidCommit)
		}
		pub = c.Commit.Path.LeafNode.SignatureKey
	case SenderNewMemberProposal:
		if c.ContentType != ContentProposal || c.Proposal == nil || c.Proposal.Type != ProposalAdd || c.Proposal.Add == nil {
			return fmt.Errorf("%w: new member proposal that is not an Add", ErrInvalidMessage)
		}
		pub = c.Proposal.Add.KeyPackage.LeafNode.SignatureKey
	case SenderExternal:
		es, err := g.externalSenderKey(c.Sender.SenderIndex)
		if err != nil {
			return err
		}
		pub = es.SignatureKey
	default:
		return fmt.Errorf("%w: sender type %v is not supported", ErrInvalidMessage, c.Sender.Type)
	}
	if err := ac.VerifySignature(g.suite, pub, &g.ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	return nil
}

func (g *Group) processPrivate(pm *PrivateMessage) (*Received, error) {
	if !bytes.Equal(pm.GroupID, g.ctx.GroupID) {
		return nil, ErrWrongGroup
	}
	if pm.Epoch != g.ctx.Epoch || g.removed {
		// A removed member keeps only past epochs, for late messages.
		if pm.ContentType != ContentApplication {
			if g.removed {
				return nil, ErrNotMember
			}
			return nil, fmt.Errorf("%w: %v for epoch %d, group is at epoch %d", ErrWrongEpoch, pm.ContentType, pm.Epoch, g.ctx.Epoch)
		}
		return g.processPastApplication(pm)
	}
	if g.removed {
		return nil, ErrNotMember
	}
	if g.reinit != nil {
		return nil, errReInitialized()
	}
	sd, err := openSenderData(g.suite, pm, g.keys.senderDataSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	undo := g.keys.secretTree.snapshotLeaf(sd.leaf)
	ac, err := unprotectPrivateFrom(g.suite, pm, g.keys.secretTree, sd)
	if err != nil {
		undo.restore()
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if err := g.verifySender(ac); err != nil {
		undo.restore()
		return nil, err
	}
	r, err := g.dispatch(ac, undo)
	if err != nil {
		undo.restore()
		return nil, err
	}
	undo.discard()
	return r, nil
}

// processPastApplication reads a late application message of a past epoch
// whose keys are still kept.
func (g *Group) processPastApplication(pm *PrivateMessage) (*Received, error) {
	var pe *pastEpoch
	for _, p := range g.past {
		if p.epoch == pm.Epoch {
			pe = p
		}
	}
	if pe == nil {
		if pm.Epoch > g.ctx.Epoch {
			return nil, fmt.Errorf("%w: application message for future epoch %d", ErrWrongEpoch, pm.Epoch)
		}
		return nil, fmt.Errorf("%w: epoch %d", ErrEpochTooOld, pm.Epoch)
	}
	sd, err := openSenderData(g.suite, pm, pe.senderDataSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	undo := pe.secretTree.snapshotLeaf(sd.leaf)
	ac, err := unprotectPrivateFrom(g.suite, pm, pe.secretTree, sd)
	if err != nil {
		undo.restore()
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	l := ac.Content.Sender.LeafIndex
	ps := pe.sender(l)
	if ps == nil {
		undo.restore()
		return nil, fmt.Errorf("%w: sender leaf %d is blank", ErrInvalidMessage, l)
	}
	if err := ac.VerifySignature(g.suite, ps.signatureKey, &pe.ctx); err != nil {
		undo.restore()
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	undo.discard()
	return &Received{
		Kind:       KindApplication,
		Epoch:      pm.Epoch,
		SenderType: SenderMember,
		Sender: Member{Leaf: l, Identity: bytes.Clone(ps.credential.Identity), Credential: *cloneCredential(&ps.credential),
			SignatureKey: bytes.Clone(ps.signatureKey)},
		AuthenticatedData: bytes.Clone(ac.Content.AuthenticatedData),
		Plaintext:         bytes.Clone(ac.Content.ApplicationData),
	}, nil
}

// dispatch handles authenticated content of the current epoch. undo, if
// not nil, is restored by the caller on error.
func (g *Group) dispatch(ac *AuthenticatedContent, undo *secretLeafUndo) (*Received, error) {
	c := &ac.Content
	r := &Received{
		Epoch:             c.Epoch,
		SenderType:        c.Sender.Type,
		AuthenticatedData: bytes.Clone(c.AuthenticatedData),
	}
	if c.Sender.Type == SenderMember {
		r.Sender = g.mustMember(c.Sender.LeafIndex)
	}
	switch c.ContentType {
	case ContentApplication:
		if ac.WireFormat != WireFormatPrivateMessage {
			return nil, fmt.Errorf("%w: application data in clear", ErrInvalidMessage)
		}
		r.Kind = KindApplication
		r.Plaintext = bytes.Clone(c.ApplicationData)
		return r, nil
	case ContentProposal:
		return g.receiveProposal(ac, r)
	case ContentCommit:
		return g.receiveCommit(ac, r)
	}
	return nil, fmt.Errorf("%w: content type %v", ErrInvalidMessage, c.ContentType)
}

func (g *Group) receiveProposal(ac *AuthenticatedContent, r *Received) (*Received, error) {
	c := &ac.Content
	p := c.Proposal
	if p == nil {
		return nil, fmt.Errorf("%w: empty proposal", ErrInvalidMessage)
	}
	if c.Sender.Type == SenderMember && c.Sender.LeafIndex == g.self {
		return nil, fmt.Errorf("%w: own proposal echoed back", ErrInvalidMessage)
	}
	switch p.Type {
	case ProposalExternalInit:
		return nil, fmt.Errorf("%w: ExternalInit outside an external commit", ErrInvalidProposal)
	}
	if err := g.validateProposal(p, c.Sender, g.ctx.Extensions, false); err != nil {
		return nil, err
	}
	if err := g.checkProposalLeaf(p, c.Sender, g.ctx.Extensions); err != nil {
		return nil, err
	}
	ref := ac.ProposalRef(g.suite)
	for _, cp := range g.proposals {
		if bytes.Equal(cp.ref, ref) {
			return nil, fmt.Errorf("%w: proposal received twice", ErrInvalidMessage)
		}
	}
	info := g.proposalInfo(&resolvedProposal{proposal: p, sender: c.Sender, ref: ref}, false)
	if err := g.keepProposal(&info); err != nil {
		return nil, err
	}
	// The cache keeps its own copy, so that the caller's Received can
	// not change the group.
	kept, err := ParseProposal(p.Marshal())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	g.proposals = append(g.proposals, cachedProposal{ref: ref, proposal: *kept, sender: c.Sender})
	r.Kind = KindProposal
	r.Proposal = p
	r.ProposalRef = slices.Clone(ref)
	if c.Sender.Type != SenderMember {
		r.Sender = info.Sender
	}
	return r, nil
}

// receiveCommit applies a commit from another member or an external joiner
// (RFC 9420 §12.4.2) to a copy of g and installs it on success.
func (g *Group) receiveCommit(ac *AuthenticatedContent, r *Received) (_ *Received, err error) {
	var ng *Group
	defer func() {
		if err != nil {
			wipeDiscarded(ng, g) // the next epoch's secrets and keys, built for nothing
		}
	}()
	s := g.suite
	c := &ac.Content
	commit := c.Commit
	if commit == nil {
		return nil, fmt.Errorf("%w: empty commit", ErrInvalidMessage)
	}
	external := c.Sender.Type == SenderNewMemberCommit
	if !external && c.Sender.Type != SenderMember {
		return nil, fmt.Errorf("%w: commit from %v", ErrInvalidCommit, c.Sender.Type)
	}
	if !external && c.Sender.LeafIndex == g.self {
		return nil, fmt.Errorf("%w: own commit that is not pending", ErrInvalidCommit)
	}
	list, err := g.resolveProposals(commit, c.Sender, external)
	if err != nil {
		return nil, err
	}
	if err := g.validateProposalList(list, c.Sender, external, false); err != nil {
		return nil, err
	}
	pskSecret, err := g.pskSecret(pskIDsOf(list))
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
	if err := checkCommitPath(commit, list, res, external); err != nil {
		return nil, err
	}
	if res.selfUpdate != nil {
		priv, ok := g.pendingUpdates[string(res.selfUpdate)]
		if !ok {
			return nil, fmt.Errorf("%w: own update without its key", ErrInvalidCommit)
		}
		ng.priv.EncryptionKey = bytes.Clone(priv)
	}
	committer := c.Sender.LeafIndex
	ng.ctx.Epoch = g.ctx.Epoch + 1
	var commitSecret []byte
	var pathChange *LeafChange
	if committer, pathChange, err = ng.mergeCommitPath(g, committer, commit.Path, external, res); err != nil {
		return nil, err
	}
	if commit.Path != nil && !res.selfRemoved {
		cs, err := ng.priv.DecryptPath(s, ng.tree, committer, commit.Path, ng.ctx.Marshal(), res.added)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		commitSecret = cs
	}
	confirmed, err := ConfirmedTranscriptHash(s, g.interim, ac)
	if err != nil {
		return nil, err
	}
	ng.ctx.ConfirmedTranscriptHash = confirmed
	staged := g.stageCommit(ng, res, list, c.Sender, committer, pathChange)

	r.Kind = KindCommit
	r.Commit = staged
	r.NewEpoch = ng.ctx.Epoch
	r.Removed = res.removed
	r.DiscardedPendingCommit = g.pending != nil
	if res.selfRemoved {
		// This client is out: keep the old epoch for late messages only.
		ng.retire(g, nil)
		ng.ctx = cloneGroupContext(&g.ctx)
		ng.tree = g.tree.Clone()
		ng.removed = true
		ng.proposals = nil
		ng.pendingUpdates = map[string][]byte{}
		ng.keys = epochKeys{secretTree: NewSecretTree(s, nil, 0)}
		ng.priv = NewTreePrivateKeys(g.self, nil)
		r.SelfRemoved = true
		if err := g.inspectCommit(staged); err != nil {
			return nil, err
		}
		if g.pending != nil {
			wipeDiscarded(g.pending.state, g)
		}
		wipeSuperseded(g)
		*g = *ng
		return r, nil
	}
	initSecret := g.keys.initSecret
	if external {
		priv, _, err := ExternalKeyPair(s, g.keys.externalSecret)
		if err != nil {
			return nil, err
		}
		initSecret, err = s.HPKEExportReceiver(priv, res.externalInit.KEMOutput, nil, externalInitLabel, s.HashSize())
		clear(priv)
		if err != nil {
			return nil, fmt.Errorf("%w: external init: %w", ErrInvalidCommit, err)
		}
	}
	joiner, err := DeriveJoinerSecret(s, initSecret, commitSecret, ng.ctx.Marshal())
	if err != nil {
		return nil, err
	}
	defer clear(joiner)
	ng.retire(g, nil)
	if err := ng.installEpoch(joiner, pskSecret); err != nil {
		return nil, err
	}
	if err := VerifyConfirmationTag(s, ng.keys.confirmationKey, confirmed, ac.Auth.ConfirmationTag); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	ng.confirmationTag = bytes.Clone(ac.Auth.ConfirmationTag)
	ng.interim = InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
	ng.priv.Prune(ng.tree)
	ng.proposals = nil
	ng.pendingUpdates = map[string][]byte{}
	ng.lastOwnCommit = nil
	if res.reinit != nil {
		ng.reinit = res.reinit
		r.ReInit = res.reinit
	}
	r.Added = ng.membersAt(res.added)
	r.Updated = ng.membersAt(res.updated)
	if external {
		r.Sender = ng.mustMember(committer)
	}
	if err := g.inspectCommit(staged); err != nil {
		return nil, err
	}
	if g.pending != nil {
		wipeDiscarded(g.pending.state, g)
	}
	wipeSuperseded(g)
	*g = *ng
	return r, nil
}

// MessageHeader is the clear part of an MLSMessage that routing needs.
type MessageHeader struct {
	WireFormat  WireFormat
	GroupID     []byte      // PublicMessage, PrivateMessage, GroupInfo
	Epoch       uint64      // PublicMessage, PrivateMessage, GroupInfo
	ContentType ContentType // PublicMessage, PrivateMessage
}

// PeekMessage decodes an MLSMessage and returns its clear header, without
// any keys: for routing a message to its group before processing it.
func PeekMessage(b []byte) (*MessageHeader, error) {
	m, err := ParseMLSMessage(b)
	if err != nil {
		return nil, err
	}
	h := &MessageHeader{WireFormat: m.WireFormat}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		c := &m.PublicMessage.Content
		h.GroupID, h.Epoch, h.ContentType = c.GroupID, c.Epoch, c.ContentType
	case WireFormatPrivateMessage:
		p := m.PrivateMessage
		h.GroupID, h.Epoch, h.ContentType = p.GroupID, p.Epoch, p.ContentType
	case WireFormatGroupInfo:
		gc := &m.GroupInfo.GroupContext
		h.GroupID, h.Epoch = gc.GroupID, gc.Epoch
	}
	return h, nil
}

// resolveProposals lists the proposals a received commit covers, by value
// (each kept only if the application's filter keeps it) or by reference to
// the proposals cached in this epoch.
func (g *Group) resolveProposals(commit *Commit, committer Sender, external bool) ([]resolvedProposal, error) {
	list := make([]resolvedProposal, 0, len(commit.Proposals))
	for _, por := range commit.Proposals {
		switch por.Type {
		case ProposalOrRefProposal:
			rp := resolvedProposal{proposal: por.Proposal, sender: committer}
			if por.Proposal == nil {
				return nil, fmt.Errorf("%w: empty proposal", ErrInvalidCommit)
			}
			info := g.proposalInfo(&rp, true)
			if err := g.keepProposal(&info); err != nil {
				return nil, err
			}
			list = append(list, rp)
		case ProposalOrRefReference:
			if external {
				return nil, fmt.Errorf("%w: external commit with a proposal by reference", ErrInvalidCommit)
			}
			i := slices.IndexFunc(g.proposals, func(cp cachedProposal) bool { return bytes.Equal(cp.ref, por.Reference) })
			if i < 0 {
				return nil, fmt.Errorf("%w: unknown proposal reference %x", ErrInvalidCommit, por.Reference)
			}
			cp := &g.proposals[i]
			p := cp.proposal
			list = append(list, resolvedProposal{proposal: &p, sender: cp.sender, ref: cp.ref})
		default:
			return nil, fmt.Errorf("%w: ProposalOrRef type %d", ErrInvalidCommit, por.Type)
		}
	}
	return list, nil
}

// mergeCommitPath merges a received commit's UpdatePath (nil: none) into
// ng, the next epoch's state built from g, checks the committer's new leaf
// (with the application's IdentityProvider) and sets the new tree hash
// (RFC 9420 §12.4.2): for an external commit the joiner first takes the
// leftmost blank leaf. It returns the committer's leaf and, for a member's
// path, its leaf change. Members and the delivery service's PublicGroup
// share it; decrypting the path is the member's own next step.
func (ng *Group) mergeCommitPath(g *Group, committer LeafIndex, path *UpdatePath, external bool, res *applied) (LeafIndex, *LeafChange, error) {
	s := g.suite
	var pathChange *LeafChange
	if path != nil {
		var err error
		if external {
			// A placeholder takes the leftmost blank leaf; the path's
			// leaf replaces it in MergeUpdatePath.
			tmp := path.LeafNode.Clone()
			tmp.EncryptionKey = []byte{}
			if committer, err = ng.tree.AddLeaf(tmp); err != nil {
				return 0, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
			}
		}
		old := ng.tree.LeafNode(committer)
		ln := &path.LeafNode
		if err := validateLeafNodeStandalone(s, ln, LeafNodeSourceCommit, g.ctx.GroupID, committer, time.Time{}); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		if !external && bytes.Equal(old.EncryptionKey, ln.EncryptionKey) {
			return 0, nil, fmt.Errorf("%w: path keeps the committer's encryption key", ErrInvalidCommit)
		}
		if err := checkRequiredCapabilities(ng.ctx.Extensions, ln); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		switch {
		case !external:
			pathChange = &LeafChange{Leaf: committer, Old: leafMember(committer, old), New: leafMember(committer, ln), ByPath: true}
			err = g.validateSuccessor(LeafFromCommit, pathChange.Old, committer, ln, ng.ctx.Extensions)
		case len(res.removed) > 0:
			err = g.validateSuccessor(LeafFromExternalCommit, res.removed[0], committer, ln, ng.ctx.Extensions)
		default:
			err = g.validateLeaf(LeafFromExternalCommit, committer, ln, ng.ctx.Extensions)
		}
		if err != nil {
			return 0, nil, err
		}
		// validateLeafNodeStandalone checked the leaf's signature and key.
		if err := ng.tree.mergeUpdatePath(s, committer, path, g.ctx.GroupID, true); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
	}
	if err := verifyUniqueKeysAfterCommit(ng.tree); err != nil {
		return 0, nil, err
	}
	ng.ctx.TreeHash = ng.tree.TreeHash(s)
	if err := ng.tree.checkChangedCredentialTypes(g.tree, res.changedLeaves(committer, path != nil)); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	return committer, pathChange, nil
}

// checkCommitPath checks that a commit has the path its proposals require
// and that an external commit removes only the joiner's old leaf.
func checkCommitPath(commit *Commit, list []resolvedProposal, res *applied, external bool) error {
	if (len(list) == 0 || res.pathRequired) && commit.Path == nil {
		return fmt.Errorf("%w: the commit needs a path", ErrInvalidCommit)
	}
	if external {
		for _, rm := range res.removed {
			if !rm.Credential.Equal(&commit.Path.LeafNode.Credential) {
				return fmt.Errorf("%w: external commit removes another client", ErrInvalidCommit)
			}
		}
	}
	return nil
}
