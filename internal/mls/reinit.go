package mls

import (
	"bytes"
	"errors"
	"fmt"
)

// This file restarts a group: reinitialization (RFC 9420 §11.2), where a
// commit with a ReInit proposal closes the group and a member creates its
// successor with the proposal's parameters, and subgroup branching
// (§11.3), where a member creates a new group from some of the members.
// In both the new group starts with a commit from epoch 0 to epoch 1 that
// adds the members and injects a resumption PSK of the old group (usage
// reinit or branch); its Welcome names that PSK, and a joiner checks the
// new group against the old one before it accepts it.

// Sentinel errors of reinitialization and branching. Errors wrap them
// (errors.Is).
var (
	// ErrReInitialized: the group was closed by a commit with a ReInit
	// proposal. It neither sends nor accepts proposals, commits or
	// application messages of its last epoch (late application messages of
	// earlier epochs are still read); its members move to the new group
	// (CreateReInitGroup, JoinReInit). Errors that wrap it wrap
	// ErrNotMember too.
	ErrReInitialized = errors.New("mls: the group was reinitialized")
	// ErrNotReInitialized: CreateReInitGroup or JoinReInit on a group that
	// no ReInit commit closed.
	ErrNotReInitialized = errors.New("mls: the group was not reinitialized")
	// ErrResumptionMismatch: a new group does not fit the group it claims
	// to resume: its Welcome has no resumption PSK of the expected usage,
	// or one of another group or epoch; its parameters differ from the
	// ReInit proposal (or, for a branch, from the old group); its epoch is
	// not 1; or its members are not the old group's (a subset of them for
	// a branch). Also returned to a creator whose KeyPackages do not fit.
	ErrResumptionMismatch = errors.New("mls: the new group does not match the group it resumes")
)

// errReInitialized is what a closed group answers to anything it refuses.
func errReInitialized() error { return fmt.Errorf("%w (%w)", ErrReInitialized, ErrNotMember) }

// resumeSource is the resumption PSK of an old group that a new group's
// first commit injects (reinit or branch usage). It is set only while that
// commit is built and never stored.
type resumeSource struct {
	id  PreSharedKeyID
	psk []byte
}

// resumes reports whether a reinit or branch resumption PSK id is the one
// g is being created with.
func (g *Group) resumes(id *PreSharedKeyID) bool {
	r := g.resume
	return r != nil && id.Type == PSKTypeResumption && id.Usage == r.id.Usage &&
		bytes.Equal(id.GroupID, r.id.GroupID) && id.Epoch == r.id.Epoch
}

// ReInit returns the ReInit proposal of the commit that closed the group
// (a copy), and false if the group was not reinitialized.
func (g *Group) ReInit() (*ReInitProposal, bool) {
	if g.reinit == nil {
		return nil, false
	}
	r := *g.reinit
	r.GroupID = bytes.Clone(r.GroupID)
	r.Extensions = cloneExtensions(r.Extensions)
	return &r, true
}

// ResumeOptions tunes CreateReInitGroup and CreateBranch. The zero value
// is valid.
type ResumeOptions struct {
	// ForcePath gives the first commit of the new group an UpdatePath.
	ForcePath bool
	// OmitRatchetTree leaves the ratchet tree out of the Welcome; joiners
	// then need the new group's RatchetTree out of band.
	OmitRatchetTree bool
	// Config tunes the new group.
	Config Config
}

// CreateReInitGroup creates the successor of a group that a ReInit commit
// closed (RFC 9420 §11.2): a group with the ReInit proposal's group id,
// version, cipher suite and extensions, in which signer (this member's
// credential with a key of the new suite) adds the KeyPackages kps (every
// other member of the old group, in the new suite) by a commit from epoch
// 0 to epoch 1 that injects the old group's last resumption PSK (usage
// reinit). It returns the new group, at epoch 1, and that commit, whose
// Welcome goes to the members; the commit message itself goes to no one.
// The old group is not changed.
func (g *Group) CreateReInitGroup(signer *Signer, kps []*KeyPackage, opts *ResumeOptions) (*Group, *CommitResult, error) {
	defer g.changedState()
	if g.removed {
		return nil, nil, ErrNotMember
	}
	if g.reinit == nil {
		return nil, nil, ErrNotReInitialized
	}
	r := g.reinit
	if r.Version != MLS10 {
		return nil, nil, fmt.Errorf("%w: reinit to version %d is not supported", ErrInvalidProposal, r.Version)
	}
	if err := g.checkResumedMembers(signer, kps, r.CipherSuite, true); err != nil {
		return nil, nil, err
	}
	return g.createResumed(ResumptionPSKReInit, r.CipherSuite, r.GroupID, r.Extensions, signer, kps, opts)
}

// CreateBranch creates a subgroup of the group (RFC 9420 §11.3): a group
// in the same version and cipher suite with id groupID (16 random bytes
// if nil) and GroupContext extensions exts, in which this member adds the
// KeyPackages kps (other members of the group, each KeyPackage with the
// credential that member has here) by a commit from epoch 0 to epoch 1
// that injects the current epoch's resumption PSK (usage branch). signer
// is this member's signer in the new group; nil reuses its credential and
// signature key of this group. It returns the new group and that commit,
// whose Welcome goes to the subgroup's members. The group is not changed.
func (g *Group) CreateBranch(groupID []byte, exts []Extension, signer *Signer, kps []*KeyPackage, opts *ResumeOptions) (*Group, *CommitResult, error) {
	defer g.changedState()
	if err := g.checkActive(); err != nil {
		return nil, nil, err
	}
	if signer == nil {
		own := g.tree.LeafNode(g.self)
		signer = &Signer{Credential: *cloneCredential(&own.Credential), SignaturePub: bytes.Clone(own.SignatureKey), SignaturePriv: bytes.Clone(g.sigPriv)}
	}
	if err := g.checkResumedMembers(signer, kps, g.ctx.CipherSuite, false); err != nil {
		return nil, nil, err
	}
	return g.createResumed(ResumptionPSKBranch, g.ctx.CipherSuite, groupID, exts, signer, kps, opts)
}

// checkResumedMembers checks the members a creator puts into a new group:
// signer has this member's credential, every KeyPackage is of suite cs and
// has the credential of another member, no member comes twice, and with
// all set every member of this group is there.
func (g *Group) checkResumedMembers(signer *Signer, kps []*KeyPackage, cs CipherSuite, all bool) error {
	if signer == nil {
		return fmt.Errorf("%w: no signer", ErrResumptionMismatch)
	}
	own := g.tree.LeafNode(g.self)
	if !signer.Credential.Equal(&own.Credential) {
		return fmt.Errorf("%w: the signer's credential is not this member's", ErrResumptionMismatch)
	}
	creds := []*Credential{&signer.Credential}
	for i, kp := range kps {
		if kp == nil {
			return fmt.Errorf("%w: KeyPackage %d is nil", ErrResumptionMismatch, i)
		}
		if kp.CipherSuite != cs {
			return fmt.Errorf("%w: KeyPackage %d is of suite %v, the new group of %v", ErrResumptionMismatch, i, kp.CipherSuite, cs)
		}
		creds = append(creds, &kp.LeafNode.Credential)
	}
	return g.matchMembers(creds, all)
}

// matchMembers checks that the credentials creds are those of distinct
// members of g and, with all set, of every member of g.
func (g *Group) matchMembers(creds []*Credential, all bool) error {
	members := g.tree.Members()
	used := make([]bool, len(members))
	for i, c := range creds {
		found := false
		for k, l := range members {
			if !used[k] && g.tree.LeafNode(l).Credential.Equal(c) {
				used[k], found = true, true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: new member %d (identity %q) is not a member of the old group, or comes twice", ErrResumptionMismatch, i, c.Identity)
		}
	}
	if all {
		for k, l := range members {
			if !used[k] {
				return fmt.Errorf("%w: member at leaf %d of the old group is missing", ErrResumptionMismatch, l)
			}
		}
	}
	return nil
}

// createResumed creates a new group whose first commit adds kps and
// injects g's current resumption PSK with usage.
func (g *Group) createResumed(usage ResumptionPSKUsage, cs CipherSuite, groupID []byte, exts []Extension, signer *Signer, kps []*KeyPackage, opts *ResumeOptions) (*Group, *CommitResult, error) {
	if opts == nil {
		opts = &ResumeOptions{}
	}
	s, err := LookupSuite(cs)
	if err != nil {
		return nil, nil, err
	}
	ng, err := CreateGroup(cs, groupID, signer, &CreateOptions{Extensions: exts, Config: opts.Config, Policy: g.policy})
	if err != nil {
		return nil, nil, fmt.Errorf("mls: creating the new group: %w", err)
	}
	nonce, err := randomBytes(s.HashSize())
	if err != nil {
		return nil, nil, err
	}
	id := PreSharedKeyID{Type: PSKTypeResumption, Usage: usage, GroupID: bytes.Clone(g.ctx.GroupID), Epoch: g.ctx.Epoch, Nonce: nonce}
	ng.resume = &resumeSource{id: id, psk: bytes.Clone(g.keys.resumptionPSK)}
	props := make([]Proposal, 0, len(kps)+1)
	for _, kp := range kps {
		props = append(props, Proposal{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *kp}})
	}
	props = append(props, Proposal{Type: ProposalPreSharedKey, PreSharedKey: &PreSharedKeyProposal{PSK: id}})
	if _, err := ng.Commit(&CommitOptions{Proposals: props, ForcePath: opts.ForcePath, OmitRatchetTree: opts.OmitRatchetTree}); err != nil {
		return nil, nil, fmt.Errorf("mls: the new group's first commit: %w", err)
	}
	res, err := ng.MergePendingCommit()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: the new group's first commit: %w", err)
	}
	clear(ng.resume.psk)
	ng.resume = nil
	return ng, res, nil
}

// JoinReInit joins the successor of a group that a ReInit commit closed,
// from a Welcome addressed to kp (RFC 9420 §11.2, §12.4.3.1). Beyond what
// JoinFromWelcome checks, the Welcome must name exactly one resumption PSK
// of usage reinit, for this group and its last epoch, and the new group
// must be at epoch 1 with the group id, version, cipher suite and
// extensions of the ReInit proposal and the same members (by credential).
// Errors match ErrNotReInitialized, ErrResumptionMismatch or those of
// JoinFromWelcome; the old group is never changed.
func (g *Group) JoinReInit(welcome []byte, kp *KeyPackagePrivate, opts *JoinOptions) (*Group, error) {
	defer g.changedState()
	if g.removed {
		return nil, ErrNotMember
	}
	if g.reinit == nil {
		return nil, ErrNotReInitialized
	}
	ng, err := g.joinResumed(ResumptionPSKReInit, welcome, kp, opts)
	if err != nil {
		return nil, err
	}
	r := g.reinit
	gc := &ng.ctx
	switch {
	case !bytes.Equal(gc.GroupID, r.GroupID):
		return nil, fmt.Errorf("%w: group id %x, the ReInit says %x", ErrResumptionMismatch, gc.GroupID, r.GroupID)
	case gc.Version != r.Version:
		return nil, fmt.Errorf("%w: version %d, the ReInit says %d", ErrResumptionMismatch, gc.Version, r.Version)
	case gc.CipherSuite != r.CipherSuite:
		return nil, fmt.Errorf("%w: cipher suite %v, the ReInit says %v", ErrResumptionMismatch, gc.CipherSuite, r.CipherSuite)
	case !bytes.Equal(AppendExtensions(nil, gc.Extensions), AppendExtensions(nil, r.Extensions)):
		return nil, fmt.Errorf("%w: the extensions differ from the ReInit's", ErrResumptionMismatch)
	}
	if err := g.matchMembers(newMemberCredentials(ng), true); err != nil {
		return nil, err
	}
	return ng, nil
}

// JoinBranch joins a subgroup branched from this group, from a Welcome
// addressed to kp (RFC 9420 §11.3, §12.4.3.1). Beyond what JoinFromWelcome
// checks, the Welcome must name exactly one resumption PSK of usage
// branch, for this group and its current epoch, and the new group must be
// at epoch 1 in this group's version and cipher suite, with members that
// are all members of this group (by credential). Errors match
// ErrResumptionMismatch or those of JoinFromWelcome; this group is never
// changed.
func (g *Group) JoinBranch(welcome []byte, kp *KeyPackagePrivate, opts *JoinOptions) (*Group, error) {
	defer g.changedState()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	ng, err := g.joinResumed(ResumptionPSKBranch, welcome, kp, opts)
	if err != nil {
		return nil, err
	}
	if ng.ctx.Version != g.ctx.Version || ng.ctx.CipherSuite != g.ctx.CipherSuite {
		return nil, fmt.Errorf("%w: branch in version %d suite %v, the group is in version %d suite %v",
			ErrResumptionMismatch, ng.ctx.Version, ng.ctx.CipherSuite, g.ctx.Version, g.ctx.CipherSuite)
	}
	if err := g.matchMembers(newMemberCredentials(ng), false); err != nil {
		return nil, err
	}
	return ng, nil
}

// joinResumed joins from a Welcome that must inject exactly one resumption
// PSK of this group's current epoch with usage, and checks that the new
// group is at epoch 1.
func (g *Group) joinResumed(usage ResumptionPSKUsage, welcome []byte, kp *KeyPackagePrivate, opts *JoinOptions) (*Group, error) {
	if kp == nil {
		return nil, fmt.Errorf("%w: no KeyPackage", ErrNoMatchingKeyPackage)
	}
	found := 0
	resolve := func(id *PreSharedKeyID) ([]byte, error) {
		switch {
		case id.Usage != usage:
			return nil, fmt.Errorf("%w: resumption PSK of usage %d, want %d", ErrResumptionMismatch, id.Usage, usage)
		case !bytes.Equal(id.GroupID, g.ctx.GroupID):
			return nil, fmt.Errorf("%w: resumption PSK of group %x, want %x", ErrResumptionMismatch, id.GroupID, g.ctx.GroupID)
		case id.Epoch != g.ctx.Epoch:
			return nil, fmt.Errorf("%w: resumption PSK of epoch %d, want %d", ErrResumptionMismatch, id.Epoch, g.ctx.Epoch)
		}
		found++
		return bytes.Clone(g.keys.resumptionPSK), nil
	}
	if opts == nil {
		// The successor keeps this group's policy unless told otherwise.
		opts = &JoinOptions{Policy: g.policy}
	}
	ng, err := joinFromWelcome(welcome, kp, opts, resolve)
	if err != nil {
		return nil, err
	}
	if found != 1 {
		return nil, fmt.Errorf("%w: the Welcome carries %d resumption PSKs of usage %d, want 1", ErrResumptionMismatch, found, usage)
	}
	if ng.ctx.Epoch != 1 {
		return nil, fmt.Errorf("%w: the new group is at epoch %d, want 1", ErrResumptionMismatch, ng.ctx.Epoch)
	}
	return ng, nil
}

// newMemberCredentials lists the credentials of a group's members.
func newMemberCredentials(g *Group) []*Credential {
	var out []*Credential
	for _, l := range g.tree.Members() {
		out = append(out, &g.tree.LeafNode(l).Credential)
	}
	return out
}
