package mls

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file holds the decisions RFC 9420 leaves to the application (§5.3.1,
// §7.2, §12.1.8, §16.10): which credentials may sit in the tree, which
// received proposals are kept for a later commit, whether a received commit
// is applied, and how KeyPackage lifetimes are judged. A Policy is a runtime
// value: it is not part of the stored state, so a group restored with
// UnmarshalGroup gets it back through UnmarshalGroupWithPolicy or SetPolicy.

// Refusals by the application's Policy. They wrap the application's own
// error, so errors.Is works for both.
var (
	// ErrCredentialRefused: the IdentityProvider refused a leaf.
	ErrCredentialRefused = errors.New("mls: credential refused by the application")
	// ErrProposalRefused: the ProposalFilter refused a proposal.
	ErrProposalRefused = errors.New("mls: proposal refused by the application")
	// ErrCommitRefused: the CommitInspector refused a received commit.
	ErrCommitRefused = errors.New("mls: commit refused by the application")
)

// NoLeaf is LeafInfo.Leaf for a leaf that has no index yet: the KeyPackage
// of an Add proposal that is not committed.
const NoLeaf = ^LeafIndex(0)

// LeafOrigin says where a leaf the IdentityProvider is asked about comes
// from.
type LeafOrigin uint8

// The origins of leaves.
const (
	// LeafFromKeyPackage: the KeyPackage of an Add proposal — received
	// alone, covered by a received commit, or committed by this client.
	LeafFromKeyPackage LeafOrigin = iota + 1
	// LeafFromUpdate: the new leaf of an Update proposal.
	LeafFromUpdate
	// LeafFromCommit: the committer's new leaf in the UpdatePath of a
	// member's commit.
	LeafFromCommit
	// LeafFromExternalCommit: the joiner's leaf in an external commit (a
	// new member, or a member resyncing).
	LeafFromExternalCommit
	// LeafFromTree: a leaf of the ratchet tree a joiner receives, with a
	// Welcome or for an external join.
	LeafFromTree
)

func (o LeafOrigin) String() string {
	switch o {
	case LeafFromKeyPackage:
		return "key_package"
	case LeafFromUpdate:
		return "update"
	case LeafFromCommit:
		return "commit"
	case LeafFromExternalCommit:
		return "external_commit"
	case LeafFromTree:
		return "tree"
	}
	return fmt.Sprintf("leaf_origin(%d)", uint8(o))
}

// LeafInfo is a leaf that enters the tree or replaces one, as the
// IdentityProvider sees it. Its slices are copies.
type LeafInfo struct {
	Origin LeafOrigin
	// GroupID and Epoch: the group, and the epoch in which the change is
	// made (for LeafFromTree, the epoch of the tree received).
	GroupID []byte
	Epoch   uint64
	// Leaf is the leaf's index in the tree, or NoLeaf for an Add proposal
	// not yet committed.
	Leaf         LeafIndex
	Credential   Credential
	SignatureKey []byte
	// LeafNode is the whole leaf (capabilities, lifetime, extensions).
	LeafNode *LeafNode
	// Extensions are the GroupContext extensions in force after the
	// change.
	Extensions []Extension
}

// IdentityProvider decides which credentials may be members (mls-rs calls
// it the same; RFC 9420 §5.3.1). The library calls it for every leaf that
// enters or changes: Adds (proposed, committed or received), Updates, the
// committer's UpdatePath leaf, every leaf of a joiner's tree, and external
// commits. A refusal (non-nil error) makes the operation fail with
// ErrCredentialRefused and leaves the group unchanged; a refused proposal
// this client would commit by reference is left out instead.
type IdentityProvider interface {
	// ValidateLeaf checks one leaf: that its credential is acceptable and
	// binds its signature key.
	ValidateLeaf(leaf *LeafInfo) error
	// ValidSuccessor checks that next may replace prev, the member's
	// current leaf: for an Update, a commit's UpdatePath leaf, and a resync
	// external commit (prev is the removed leaf). It must accept only the
	// same client (mls-rs's valid_successor). ValidateLeaf has already
	// accepted next.
	ValidSuccessor(prev Member, next *LeafInfo) error
}

// ProposalInfo is a proposal the ProposalFilter is asked to keep.
type ProposalInfo struct {
	// Proposal is a copy.
	Proposal *Proposal
	// Ref is the proposal's reference; nil for a proposal carried by
	// value in a commit.
	Ref ProposalRef
	// SenderType and Sender say who sent it, as in Received.
	SenderType SenderType
	Sender     Member
	Epoch      uint64
	// InCommit is set for a proposal carried by value in a received commit
	// (its sender is the committer).
	InCommit bool
}

// ProposalFilter decides which received proposals this client keeps
// (OpenMLS keeps nothing unless asked; mls-rs filters with MlsRules). It is
// called for every proposal received alone (a refused one is not cached,
// so no commit of this client covers it, and ProcessMessage fails with
// ErrProposalRefused) and for every proposal a received commit carries by
// value (a refusal refuses the commit). Proposals by reference in a
// received commit must be ones this client kept, or the commit fails as
// naming an unknown proposal.
type ProposalFilter interface {
	KeepProposal(p *ProposalInfo) error
}

// KeepSenders is a ProposalFilter that keeps the proposals of the sender
// types it lists.
type KeepSenders []SenderType

// KeepProposal implements ProposalFilter.
func (k KeepSenders) KeepProposal(p *ProposalInfo) error {
	if slices.Contains(k, p.SenderType) {
		return nil
	}
	return fmt.Errorf("proposals from %v senders are not kept", p.SenderType)
}

// DefaultProposalFilter is the filter of a Policy without one: it keeps
// proposals of members and of external commits, and refuses those of
// external senders and new-member proposals, which anyone who knows the
// group id could otherwise slip into the next commit.
var DefaultProposalFilter ProposalFilter = KeepSenders{SenderMember, SenderNewMemberCommit}

// KeepAllProposals keeps every proposal, as RFC 9420 does on its own.
var KeepAllProposals ProposalFilter = KeepSenders{SenderMember, SenderExternal, SenderNewMemberProposal, SenderNewMemberCommit}

// LeafChange is a member's leaf replaced by a commit.
type LeafChange struct {
	Leaf     LeafIndex
	Old, New Member
	// ByPath is set for the committer's UpdatePath leaf; otherwise the
	// change is an Update proposal.
	ByPath bool
}

// StagedCommit is what a received commit would do, shown to the
// CommitInspector before anything is merged (OpenMLS's StagedCommit).
type StagedCommit struct {
	// Epoch is the commit's epoch; NewEpoch the one it starts.
	Epoch, NewEpoch uint64
	// SenderType is SenderMember or SenderNewMemberCommit; Committer is
	// the member that committed (for an external commit, the joiner at its
	// new leaf).
	SenderType SenderType
	Committer  Member
	// Proposals are all proposals the commit covers, in order.
	Proposals []ProposalInfo
	// Added are the new members at their leaves; Removed the members
	// removed; Updated the leaves replaced (Updates and the committer's
	// UpdatePath leaf).
	Added   []Member
	Removed []Member
	Updated []LeafChange
	// ExtensionsChanged is set when the commit replaces the GroupContext
	// extensions (OldExtensions by NewExtensions).
	ExtensionsChanged bool
	OldExtensions     []Extension
	NewExtensions     []Extension
	// PSKs are the pre-shared keys the commit injects.
	PSKs []PreSharedKeyID
	// ReInit is set when the commit closes the group for reinitialization.
	ReInit *ReInitProposal
	// Resync is set for an external commit that replaces the joiner's own
	// old leaf.
	Resync bool
	// SelfRemoved is set when the commit removes this client.
	SelfRemoved bool
}

// CommitInspector sees every received commit that is valid, before it is
// merged, and may refuse it: ProcessMessage then fails with ErrCommitRefused
// and the group stays as it was.
type CommitInspector interface {
	InspectCommit(c *StagedCommit) error
}

// LifetimeRules judge the lifetime of received KeyPackages (RFC 9420 §7.3
// leaves the clock skew and the longest acceptable lifetime to the
// application).
type LifetimeRules struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// ClockSkew is how far outside its lifetime a received KeyPackage is
	// still accepted, for clocks that differ.
	ClockSkew time.Duration
	// MaxLifetime is the longest not_before..not_after window accepted (0:
	// no maximum).
	MaxLifetime time.Duration
}

// Policy collects the application's decisions for a group. The zero value
// accepts every credential that passes RFC 9420's checks, keeps proposals
// as DefaultProposalFilter does, applies every valid commit, and checks
// lifetimes only of KeyPackages this client commits.
type Policy struct {
	// Identity validates every leaf that enters or changes (nil: accept).
	Identity IdentityProvider
	// Proposals decides which received proposals are kept (nil:
	// DefaultProposalFilter).
	Proposals ProposalFilter
	// Commits inspects received commits before they merge (nil: accept).
	Commits CommitInspector
	// Lifetimes, if set, checks the lifetime of every KeyPackage in a
	// received Add too, with its clock, skew and maximum; it also supplies
	// the clock for the Adds this client commits.
	Lifetimes *LifetimeRules
}

// SetPolicy replaces the group's policy. A restored group starts with the
// zero Policy: set it again after UnmarshalGroup.
func (g *Group) SetPolicy(p Policy) {
	g.policy = p
	if g.pending != nil {
		g.pending.state.policy = p
	}
}

// Policy returns the group's policy.
func (g *Group) Policy() Policy { return g.policy }

// UnmarshalGroupWithPolicy is UnmarshalGroup followed by SetPolicy.
func UnmarshalGroupWithPolicy(b []byte, p Policy) (*Group, error) {
	g, err := UnmarshalGroup(b)
	if err != nil {
		return nil, err
	}
	g.SetPolicy(p)
	return g, nil
}

func (p *Policy) proposalFilter() ProposalFilter {
	if p.Proposals == nil {
		return DefaultProposalFilter
	}
	return p.Proposals
}

// now returns the policy's clock.
func (p *Policy) now() time.Time {
	if p.Lifetimes != nil && p.Lifetimes.Now != nil {
		return p.Lifetimes.Now()
	}
	return time.Now()
}

// checkLifetime checks a KeyPackage leaf's lifetime. sending is true for
// KeyPackages this client commits or proposes: they are always checked;
// received ones only when the policy has LifetimeRules.
func (p *Policy) checkLifetime(ln *LeafNode, sending bool) error {
	r := p.Lifetimes
	if r == nil && !sending {
		return nil
	}
	if ln.Lifetime == nil {
		return fmt.Errorf("%w: no lifetime", ErrInvalidLeafNode)
	}
	now := p.now()
	var skew, maxLife time.Duration
	if r != nil {
		skew, maxLife = r.ClockSkew, r.MaxLifetime
	}
	lt := ln.Lifetime
	nb, na := unixTime(lt.NotBefore), unixTime(lt.NotAfter)
	if now.Add(skew).Before(nb) || now.Add(-skew).After(na) {
		return fmt.Errorf("%w: outside its lifetime", ErrInvalidLeafNode)
	}
	if maxLife > 0 && (lt.NotAfter < lt.NotBefore || na.Sub(nb) > maxLife) {
		return fmt.Errorf("%w: lifetime longer than %v", ErrInvalidLeafNode, maxLife)
	}
	return nil
}

// unixTime converts a lifetime bound, saturating beyond what time.Time
// holds.
func unixTime(s uint64) time.Time {
	const maxUnix = 1 << 62 / int64(time.Second)
	if s > uint64(maxUnix) {
		return time.Unix(maxUnix, 0)
	}
	return time.Unix(int64(s), 0)
}

// CheckKeyPackage checks a KeyPackage of suite cs before this client uses
// it (for example one fetched from a directory), as an Add of it will be
// checked: ValidateKeyPackage's checks, the lifetime rules (as for a
// KeyPackage this client commits) and the IdentityProvider, with Origin
// LeafFromKeyPackage, Leaf NoLeaf and no group. Failures match
// ErrInvalidKeyPackage or ErrCredentialRefused.
func (p Policy) CheckKeyPackage(kp *KeyPackage, cs CipherSuite) error {
	s, err := LookupSuite(cs)
	if err != nil {
		return err
	}
	if err := validateKeyPackage(s, kp, time.Time{}); err != nil {
		return err
	}
	if err := p.checkLifetime(&kp.LeafNode, true); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	g := &Group{suite: s, policy: p}
	return g.validateLeaf(LeafFromKeyPackage, NoLeaf, &kp.LeafNode, nil)
}
