package mls

import (
	"bytes"
	"fmt"
	"math"
	"slices"
)

// This file is the public view of a group that a delivery service keeps
// (RFC 9420 §16.11; OpenMLS calls it PublicGroup): the ratchet tree without
// private keys, the GroupContext and the interim transcript hash. It is
// built from a GroupInfo that carries the ratchet tree and follows the
// group through the handshake messages its members send as PublicMessages.
//
// A PublicGroup checks everything a party without the group's secrets can:
// the GroupInfo's signature and tree; for each proposal and commit the
// epoch, the signature under the sender's leaf key (a DS cannot check the
// membership tag, which needs the epoch's membership key), the proposals'
// validity on the public tree, and the UpdatePath's leaf and parent hashes.
// It uses the same validation code as a member's Group. It cannot check the
// encrypted path secrets or the confirmation tag: a member that signs a
// commit with garbage secrets passes here and is caught by the members.
//
// Like a Group, a PublicGroup changes only when an operation succeeds.

// MaxPublicProposals bounds the proposals a PublicGroup keeps per epoch, so
// that a member cannot grow the stored view without end.
const MaxPublicProposals = 256

// noLeaf is the "own leaf" of the secretless Group a PublicGroup validates
// with: no real leaf, so no check treats a sender as this client.
const noLeaf = LeafIndex(math.MaxUint32)

// PublicGroup is the public state of one group in one epoch. See the file
// comment.
type PublicGroup struct {
	suite     Suite
	ctx       GroupContext
	interim   []byte
	tree      *RatchetTree
	proposals []cachedProposal // valid proposals of this epoch
	reinit    bool
	// identity judges the leaves that proposals and commits bring, as a
	// member's Policy.Identity does (nil: accept); it is not stored.
	identity IdentityProvider
}

// SetIdentityProvider sets what judges every leaf a later proposal or
// commit brings (an Add's KeyPackage, an Update, a commit's path leaf),
// as Policy.Identity does for a member. A decoded PublicGroup has none:
// set it again after UnmarshalPublicGroup. ValidateMembers applies it to
// the current tree.
func (p *PublicGroup) SetIdentityProvider(id IdentityProvider) { p.identity = id }

// ValidateMembers asks the IdentityProvider about every leaf of the
// current tree, as a joiner does about the tree it receives.
func (p *PublicGroup) ValidateMembers() error { return p.shell().validateTree(p.tree) }

// PublicCommit says what an applied commit changed.
type PublicCommit struct {
	// Committer is the member that signed the commit, at its leaf in the
	// new epoch (for an external commit, the joiner's new leaf).
	Committer Member
	// External is set for an external commit (new_member_commit sender).
	External bool
	// Added are the members the commit added, Removed those it removed
	// (with their leaves in the old epoch).
	Added   []Member
	Removed []Member
	// Epoch is the epoch the commit started.
	Epoch uint64
}

// PublicProposal is a proposal the PublicGroup accepted and cached.
type PublicProposal struct {
	SenderType SenderType
	// Sender is the member that sent it (for an external sender, its
	// credential and key; for a new member, the KeyPackage's leaf).
	Sender   Member
	Proposal *Proposal
	Ref      ProposalRef
}

// NewPublicGroup builds the public view of a group from a GroupInfo
// MLSMessage that carries the ratchet tree. It verifies the GroupInfo's
// signature under the signer's leaf, the tree (tree hash against the
// GroupContext, parent hashes, leaf signatures and keys) and the
// GroupContext extensions.
func NewPublicGroup(groupInfo []byte) (*PublicGroup, error) {
	m, err := ParseMLSMessage(groupInfo)
	if err != nil {
		return nil, err
	}
	if m.WireFormat != WireFormatGroupInfo {
		return nil, fmt.Errorf("%w: %v is not a GroupInfo", ErrInvalidMessage, m.WireFormat)
	}
	gi := m.GroupInfo
	s, err := LookupSuite(gi.GroupContext.CipherSuite)
	if err != nil {
		return nil, err
	}
	if gi.GroupContext.Version != MLS10 {
		return nil, fmt.Errorf("%w: GroupInfo version %v", ErrInvalidMessage, gi.GroupContext.Version)
	}
	if len(gi.ConfirmationTag) != s.HashSize() {
		return nil, fmt.Errorf("%w: confirmation tag of %d bytes", ErrInvalidMessage, len(gi.ConfirmationTag))
	}
	if err := checkGroupExtensions(s, gi.GroupContext.Extensions); err != nil {
		return nil, err
	}
	tree, err := groupInfoTree(s, gi, nil)
	if err != nil {
		return nil, err
	}
	return &PublicGroup{
		suite:   s,
		ctx:     cloneGroupContext(&gi.GroupContext),
		interim: InterimTranscriptHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag),
		tree:    tree,
	}, nil
}

// GroupID returns the group id.
func (p *PublicGroup) GroupID() []byte { return bytes.Clone(p.ctx.GroupID) }

// Epoch returns the current epoch.
func (p *PublicGroup) Epoch() uint64 { return p.ctx.Epoch }

// GroupContext returns a copy of the current GroupContext.
func (p *PublicGroup) GroupContext() GroupContext { return cloneGroupContext(&p.ctx) }

// Members returns the members of the current epoch, by leaf.
func (p *PublicGroup) Members() []Member { return treeMembers(p.tree) }

// Member returns the member at leaf i.
func (p *PublicGroup) Member(i LeafIndex) (Member, bool) {
	ln := p.tree.LeafNode(i)
	if ln == nil {
		return Member{}, false
	}
	return leafMember(i, ln), true
}

// ReInitialized reports whether a ReInit commit closed the group.
func (p *PublicGroup) ReInitialized() bool { return p.reinit }

// shell is a Group without any secret that shares p's state, for the
// validation code members use. It must not be changed.
func (p *PublicGroup) shell() *Group {
	return &Group{suite: p.suite, ctx: p.ctx, tree: p.tree, self: noLeaf, proposals: p.proposals, policy: Policy{Identity: p.identity}}
}

// authenticate parses a PublicMessage of content type ct for the current
// epoch and verifies the sender's signature.
func (p *PublicGroup) authenticate(msg []byte, ct ContentType) (*AuthenticatedContent, error) {
	m, err := ParseMLSMessage(msg)
	if err != nil {
		return nil, err
	}
	if m.WireFormat != WireFormatPublicMessage {
		return nil, fmt.Errorf("%w: handshake message as %v, want a PublicMessage", ErrInvalidMessage, m.WireFormat)
	}
	c := &m.PublicMessage.Content
	switch {
	case c.ContentType != ct:
		return nil, fmt.Errorf("%w: %v content, want %v", ErrInvalidMessage, c.ContentType, ct)
	case !bytes.Equal(c.GroupID, p.ctx.GroupID):
		return nil, ErrWrongGroup
	case c.Epoch != p.ctx.Epoch:
		return nil, fmt.Errorf("%w: %v for epoch %d, group is at epoch %d", ErrWrongEpoch, c.ContentType, c.Epoch, p.ctx.Epoch)
	case p.reinit:
		return nil, errReInitialized()
	}
	if err := checkSenderContent(c); err != nil {
		return nil, err
	}
	ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: m.PublicMessage.Content, Auth: m.PublicMessage.Auth}
	if ct == ContentCommit && len(ac.Auth.ConfirmationTag) != p.suite.HashSize() {
		return nil, fmt.Errorf("%w: confirmation tag of %d bytes", ErrInvalidCommit, len(ac.Auth.ConfirmationTag))
	}
	if err := p.shell().verifySender(ac); err != nil {
		return nil, err
	}
	return ac, nil
}

// ProcessProposal checks a proposal sent as a PublicMessage MLSMessage
// (with the IdentityProvider for the leaf of an Add or an Update) and
// caches it for commits of this epoch that cover it by reference. On error
// p is unchanged.
func (p *PublicGroup) ProcessProposal(msg []byte) (*PublicProposal, error) {
	ac, err := p.authenticate(msg, ContentProposal)
	if err != nil {
		return nil, err
	}
	c := &ac.Content
	pr := c.Proposal
	if pr == nil {
		return nil, fmt.Errorf("%w: empty proposal", ErrInvalidMessage)
	}
	if pr.Type == ProposalExternalInit {
		return nil, fmt.Errorf("%w: ExternalInit outside an external commit", ErrInvalidProposal)
	}
	if len(p.proposals) >= MaxPublicProposals {
		return nil, fmt.Errorf("%w: %d proposals in epoch %d already", ErrInvalidProposal, len(p.proposals), p.ctx.Epoch)
	}
	g := p.shell()
	if err := g.validateProposal(pr, c.Sender, p.ctx.Extensions, false); err != nil {
		return nil, err
	}
	// The leaf an Add or Update brings is judged now, as a member judges
	// it on receipt, not only once a commit covers the proposal.
	if err := g.checkProposalLeaf(pr, c.Sender, p.ctx.Extensions); err != nil {
		return nil, err
	}
	ref := ac.ProposalRef(p.suite)
	if slices.ContainsFunc(p.proposals, func(cp cachedProposal) bool { return bytes.Equal(cp.ref, ref) }) {
		return nil, fmt.Errorf("%w: proposal received twice", ErrInvalidMessage)
	}
	kept, err := ParseProposal(pr.Marshal())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	out := &PublicProposal{SenderType: c.Sender.Type, Proposal: pr, Ref: slices.Clone(ref)}
	switch c.Sender.Type {
	case SenderMember:
		out.Sender = leafMember(c.Sender.LeafIndex, p.tree.LeafNode(c.Sender.LeafIndex))
	case SenderNewMemberProposal:
		ln := &pr.Add.KeyPackage.LeafNode
		out.Sender = Member{Identity: bytes.Clone(ln.Credential.Identity), Credential: *cloneCredential(&ln.Credential), SignatureKey: bytes.Clone(ln.SignatureKey)}
	case SenderExternal:
		if es, err := g.externalSenderKey(c.Sender.SenderIndex); err == nil {
			out.Sender = Member{Identity: bytes.Clone(es.Credential.Identity), Credential: es.Credential, SignatureKey: es.SignatureKey}
		}
	}
	p.proposals = append(slices.Clip(p.proposals), cachedProposal{ref: ref, proposal: *kept, sender: c.Sender})
	return out, nil
}

// ApplyCommit checks a commit sent as a PublicMessage MLSMessage and, if it
// is valid, advances p to the epoch it starts (RFC 9420 §12.4.2 without the
// secrets): the epoch, the committer's signature under its leaf key in this
// epoch (or, for an external commit, the rules of §12.4.3.2 as far as they
// are public), the proposals on the public tree, the UpdatePath's leaf and
// parent hashes, then the new tree, GroupContext and transcript hashes. A
// commit for another epoch fails with ErrWrongEpoch, an invalid one with
// ErrInvalidCommit or ErrInvalidMessage. On error p is unchanged.
func (p *PublicGroup) ApplyCommit(msg []byte) (*PublicCommit, error) {
	s := p.suite
	ac, err := p.authenticate(msg, ContentCommit)
	if err != nil {
		return nil, err
	}
	c := &ac.Content
	commit := c.Commit
	if commit == nil {
		return nil, fmt.Errorf("%w: empty commit", ErrInvalidMessage)
	}
	external := c.Sender.Type == SenderNewMemberCommit
	if !external && c.Sender.Type != SenderMember {
		return nil, fmt.Errorf("%w: commit from %v", ErrInvalidCommit, c.Sender.Type)
	}
	g := p.shell()
	list, err := g.resolveProposals(commit, c.Sender, external)
	if err != nil {
		return nil, err
	}
	if err := g.validateProposalList(list, c.Sender, external, false); err != nil {
		return nil, err
	}
	p.tree.warm(s)
	ng := &Group{suite: s, ctx: cloneGroupContext(&p.ctx), tree: p.tree.Clone(), self: noLeaf}
	res, err := ng.applyProposals(list)
	if err != nil {
		return nil, err
	}
	if err := g.checkCommitLeaves(ng, res); err != nil {
		return nil, err
	}
	if err := checkCommitPath(commit, list, res, external); err != nil {
		return nil, err
	}
	ng.ctx.Epoch = p.ctx.Epoch + 1
	committer, _, err := ng.mergeCommitPath(g, c.Sender.LeafIndex, commit.Path, external, res)
	if err != nil {
		return nil, err
	}
	confirmed, err := ConfirmedTranscriptHash(s, p.interim, ac)
	if err != nil {
		return nil, err
	}
	ng.ctx.ConfirmedTranscriptHash = confirmed
	out := &PublicCommit{External: external, Removed: res.removed, Epoch: ng.ctx.Epoch}
	for _, l := range res.added {
		out.Added = append(out.Added, leafMember(l, ng.tree.LeafNode(l)))
	}
	if ln := ng.tree.LeafNode(committer); ln != nil {
		out.Committer = leafMember(committer, ln)
	}
	*p = PublicGroup{
		suite:    s,
		ctx:      ng.ctx,
		interim:  InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag),
		tree:     ng.tree,
		reinit:   res.reinit != nil,
		identity: p.identity,
	}
	return out, nil
}

// MarshalBinary encodes p for storage.
func (p *PublicGroup) MarshalBinary() ([]byte, error) {
	b := AppendUint16(nil, uint16(p.ctx.CipherSuite))
	b = p.ctx.append(b)
	b = AppendOpaque(b, p.interim)
	b = AppendOpaque(b, p.tree.Marshal())
	b = AppendVector(b, func(b []byte) []byte {
		for i := range p.proposals {
			cp := &p.proposals[i]
			b = AppendOpaque(b, cp.ref)
			b = cp.proposal.append(b)
			b = cp.sender.append(b)
		}
		return b
	})
	return AppendBool(b, p.reinit), nil
}

// UnmarshalPublicGroup decodes a PublicGroup encoded by MarshalBinary.
// Malformed input fails with an error wrapping ErrDecode (or the tree's
// own decoding error).
func UnmarshalPublicGroup(b []byte) (*PublicGroup, error) {
	r := NewReader(b)
	cs := CipherSuite(r.Uint16())
	p := &PublicGroup{ctx: r.readGroupContext(), interim: r.Opaque()}
	treeBytes := r.Opaque()
	r.Vector(func(r *Reader) {
		cp := cachedProposal{ref: ProposalRef(r.Opaque())}
		cp.proposal = r.readProposal()
		cp.sender = r.readSender()
		if r.Err() == nil {
			p.proposals = append(p.proposals, cp)
		}
	})
	p.reinit = r.Bool()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: public group: %w", ErrDecode, err)
	}
	if p.ctx.CipherSuite != cs {
		return nil, fmt.Errorf("%w: public group: suite %v in a %v state", ErrDecode, p.ctx.CipherSuite, cs)
	}
	s, err := LookupSuite(cs)
	if err != nil {
		return nil, err
	}
	p.suite = s
	if len(p.interim) != s.HashSize() {
		return nil, fmt.Errorf("%w: public group: interim transcript hash of %d bytes", ErrDecode, len(p.interim))
	}
	if p.tree, err = ParseRatchetTree(treeBytes); err != nil {
		return nil, err
	}
	return p, nil
}
