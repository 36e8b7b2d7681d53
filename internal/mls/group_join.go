package mls

import (
	"bytes"
	"fmt"
	"time"
)

// This file joins a group: from a Welcome (RFC 9420 §12.4.3.1) and by an
// external commit built from a GroupInfo (§12.4.3.2).

// externalInitLabel is the HPKE exporter context of ExternalInit (RFC 9420
// §8.3).
const externalInitLabel = "MLS 1.0 external init secret"

// PSK is an external pre-shared key.
type PSK struct {
	ID     []byte
	Secret []byte
}

// JoinOptions tunes JoinFromWelcome. The zero value is valid when the
// Welcome carries the ratchet tree.
type JoinOptions struct {
	// RatchetTree is the group's tree (the ratchet_tree extension
	// encoding), for a Welcome that does not carry it.
	RatchetTree []byte
	// PSKs are the external PSKs the client knows.
	PSKs []PSK
	// Config tunes the group.
	Config Config
	// Policy holds the application's decisions for the group; its
	// IdentityProvider checks every leaf of the tree joined.
	Policy Policy
}

// JoinFromWelcome joins a group through a Welcome MLSMessage addressed to
// the KeyPackage whose private half is kp. It verifies the GroupInfo
// signature, the tree (hash, parent hashes, leaves) and the confirmation
// tag. A Welcome for another KeyPackage fails with ErrNoMatchingKeyPackage.
func JoinFromWelcome(welcome []byte, kp *KeyPackagePrivate, opts *JoinOptions) (*Group, error) {
	return joinFromWelcome(welcome, kp, opts, nil)
}

// joinFromWelcome is JoinFromWelcome; resume supplies the resumption PSKs
// the Welcome names (nil: a resumption PSK is unknown), for joining a
// reinitialized or branched group (reinit.go).
func joinFromWelcome(welcome []byte, kp *KeyPackagePrivate, opts *JoinOptions, resume func(*PreSharedKeyID) ([]byte, error)) (*Group, error) {
	if opts == nil {
		opts = &JoinOptions{}
	}
	m, err := ParseMLSMessage(welcome)
	if err != nil {
		return nil, err
	}
	if m.WireFormat != WireFormatWelcome {
		return nil, fmt.Errorf("%w: %v is not a Welcome", ErrInvalidMessage, m.WireFormat)
	}
	w := m.Welcome
	s, err := LookupSuite(w.CipherSuite)
	if err != nil {
		return nil, err
	}
	if kp.KeyPackage.CipherSuite != w.CipherSuite {
		return nil, fmt.Errorf("%w: Welcome suite %v, KeyPackage suite %v", ErrNoMatchingKeyPackage, w.CipherSuite, kp.KeyPackage.CipherSuite)
	}
	if w.Find(kp.KeyPackage.Ref(s)) == nil {
		return nil, ErrNoMatchingKeyPackage
	}
	gs, err := w.DecryptGroupSecrets(s, &kp.KeyPackage, kp.InitPriv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	defer clear(gs.JoinerSecret)
	g := &Group{
		suite:          s,
		config:         opts.Config,
		policy:         opts.Policy,
		resumption:     map[uint64][]byte{},
		psks:           map[string][]byte{},
		pendingUpdates: map[string][]byte{},
		sigPriv:        bytes.Clone(kp.SignaturePriv),
	}
	for _, p := range opts.PSKs {
		g.psks[string(p.ID)] = bytes.Clone(p.Secret)
	}
	var pskSecret []byte
	if len(gs.PSKs) > 0 {
		psks := make([][]byte, len(gs.PSKs))
		for i, id := range gs.PSKs {
			if id.Type != PSKTypeExternal {
				if resume == nil {
					return nil, fmt.Errorf("%w: resumption PSK in a Welcome", ErrUnknownPSK)
				}
				psk, err := resume(&id)
				if err != nil {
					return nil, err
				}
				psks[i] = psk
				continue
			}
			psk, ok := g.psks[string(id.PSKID)]
			if !ok {
				return nil, fmt.Errorf("%w: external psk %x", ErrUnknownPSK, id.PSKID)
			}
			psks[i] = psk
		}
		if pskSecret, err = PSKSecret(s, gs.PSKs, psks); err != nil {
			return nil, err
		}
	}
	gi, err := w.DecryptGroupInfo(s, gs.JoinerSecret, pskSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if gi.GroupContext.CipherSuite != s.ID() || gi.GroupContext.Version != MLS10 {
		return nil, fmt.Errorf("%w: GroupInfo suite %v", ErrInvalidMessage, gi.GroupContext.CipherSuite)
	}
	tree, err := groupInfoTree(s, gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	// Find this client's leaf.
	self := LeafIndex(0)
	found := false
	for _, l := range tree.Members() {
		if tree.LeafNode(l).Equal(&kp.KeyPackage.LeafNode) {
			self, found = l, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: the tree has no leaf for this KeyPackage", ErrInvalidMessage)
	}
	g.ctx = cloneGroupContext(&gi.GroupContext)
	g.tree = tree
	g.self = self
	g.priv = NewTreePrivateKeys(self, kp.EncryptionPriv)
	if gs.PathSecret != nil {
		x := commonAncestor(self, gi.Signer)
		if _, err := g.priv.ImportPathSecret(s, tree, x, gs.PathSecret.PathSecret); err != nil {
			return nil, fmt.Errorf("%w: path secret: %w", ErrInvalidMessage, err)
		}
	}
	if err := g.checkJoinedTree(tree); err != nil {
		return nil, err
	}
	if err := g.installEpoch(gs.JoinerSecret, pskSecret); err != nil {
		return nil, err
	}
	if err := VerifyConfirmationTag(s, g.keys.confirmationKey, g.ctx.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		return nil, fmt.Errorf("%w: GroupInfo: %w", ErrInvalidMessage, err)
	}
	g.confirmationTag = bytes.Clone(gi.ConfirmationTag)
	g.interim = InterimTranscriptHash(s, g.ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	for _, e := range gi.Extensions {
		if e.Type != ExtensionRatchetTree && e.Type != ExtensionExternalPub {
			g.welcomeExtensions = append(g.welcomeExtensions, Extension{Type: e.Type, Data: bytes.Clone(e.Data)})
		}
	}
	return g, nil
}

// WelcomeExtensions returns the application's extensions of the GroupInfo
// in the Welcome this group was joined by (CommitOptions.WelcomeExtensions).
// They are not kept in the stored state: read them right after
// JoinFromWelcome.
func (g *Group) WelcomeExtensions() []Extension { return cloneExtensions(g.welcomeExtensions) }

// checkJoinedTree checks what a joiner must about the group it joins with
// tree, g.ctx being its GroupContext: the GroupContext extensions are
// valid, every member supports them and the required capabilities (RFC
// 9420 §11.1, §12.4.3.1), and the IdentityProvider accepts every leaf.
func (g *Group) checkJoinedTree(tree *RatchetTree) error {
	if err := checkGroupExtensions(g.suite, g.ctx.Extensions); err != nil {
		return fmt.Errorf("%w: GroupContext: %w", ErrInvalidMessage, err)
	}
	for _, l := range tree.Members() {
		if err := checkRequiredCapabilities(g.ctx.Extensions, tree.LeafNode(l)); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidTree, l, err)
		}
	}
	return g.validateTree(tree)
}

// groupInfoTree takes the ratchet tree from gi's extension (or given, if
// gi has none), verifies gi's signature with the signer's leaf, and checks
// the tree against gi (tree hash) and on its own (RFC 9420 §12.4.3.1).
func groupInfoTree(s Suite, gi *GroupInfo, given []byte) (*RatchetTree, error) {
	raw := given
	if e, ok := FindExtension(gi.Extensions, ExtensionRatchetTree); ok {
		raw = e.Data
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: no ratchet tree in the GroupInfo and none given", ErrInvalidMessage)
	}
	tree, err := ParseRatchetTree(raw)
	if err != nil {
		return nil, err
	}
	signer := tree.LeafNode(gi.Signer)
	if signer == nil {
		return nil, fmt.Errorf("%w: GroupInfo signer %d is blank", ErrInvalidMessage, gi.Signer)
	}
	if err := gi.VerifySignature(s, signer.SignatureKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if !bytes.Equal(tree.TreeHash(s), gi.GroupContext.TreeHash) {
		return nil, fmt.Errorf("%w: tree hash does not match the GroupInfo", ErrInvalidTree)
	}
	if err := tree.Validate(s, gi.GroupContext.GroupID); err != nil {
		return nil, err
	}
	return tree, nil
}

// commonAncestor returns the lowest node above both leaves a and b.
func commonAncestor(a, b LeafIndex) NodeIndex {
	x, y := a.Node(), b.Node()
	for x != y {
		// Climb the lower of the two; at equal level move both.
		lx, ly := Level(x), Level(y)
		if lx <= ly {
			x = parentStep(x)
		}
		if ly <= lx {
			y = parentStep(y)
		}
	}
	return x
}

// ExternalJoinOptions tunes JoinExternal.
type ExternalJoinOptions struct {
	// RatchetTree is the group's tree, for a GroupInfo without it.
	RatchetTree []byte
	// Resync removes this client's old leaf (the member with the same
	// credential) in the same commit.
	Resync bool
	// ExtensionTypes are non-default extension types the client supports.
	ExtensionTypes []ExtensionType
	// AuthenticatedData is sent in clear with the commit.
	AuthenticatedData []byte
	// PSKs are external PSKs to inject into the new epoch: the commit
	// carries a PreSharedKey proposal for each, and every member must know
	// them to follow it (RFC 9420 §8.4, §12.4.3.2).
	PSKs []PSK
	// Config tunes the group.
	Config Config
	// Policy holds the application's decisions for the group; its
	// IdentityProvider checks every leaf of the tree joined.
	Policy Policy
}

// JoinExternal joins the group described by a GroupInfo MLSMessage (which
// must carry external_pub) with an external commit. It returns the group,
// already in the new epoch, and the commit to send; if the delivery service
// refuses the commit, drop the group and try again with a fresh GroupInfo.
func JoinExternal(groupInfo []byte, signer *Signer, opts *ExternalJoinOptions) (*Group, []byte, error) {
	if opts == nil {
		opts = &ExternalJoinOptions{}
	}
	m, err := ParseMLSMessage(groupInfo)
	if err != nil {
		return nil, nil, err
	}
	if m.WireFormat != WireFormatGroupInfo {
		return nil, nil, fmt.Errorf("%w: %v is not a GroupInfo", ErrInvalidMessage, m.WireFormat)
	}
	gi := m.GroupInfo
	s, err := LookupSuite(gi.GroupContext.CipherSuite)
	if err != nil {
		return nil, nil, err
	}
	tree, err := groupInfoTree(s, gi, opts.RatchetTree)
	if err != nil {
		return nil, nil, err
	}
	joined := &Group{suite: s, ctx: gi.GroupContext, policy: opts.Policy}
	if err := joined.checkJoinedTree(tree); err != nil {
		return nil, nil, err
	}
	e, ok := FindExtension(gi.Extensions, ExtensionExternalPub)
	if !ok {
		return nil, nil, fmt.Errorf("%w: GroupInfo has no external_pub", ErrInvalidMessage)
	}
	r := NewReader(e.Data)
	externalPub := r.Opaque()
	if err := r.Finish(); err != nil {
		return nil, nil, fmt.Errorf("external_pub: %w", err)
	}
	if err := s.CheckHPKEPublicKey(externalPub); err != nil {
		return nil, nil, fmt.Errorf("%w: external_pub: %w", ErrInvalidMessage, err)
	}
	kemOutput, initSecret, err := s.HPKEExportSender(externalPub, nil, externalInitLabel, s.HashSize())
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external init: %w", err)
	}
	defer clear(initSecret)

	psks := make(map[string][]byte, len(opts.PSKs))
	for _, p := range opts.PSKs {
		if _, dup := psks[string(p.ID)]; dup {
			return nil, nil, fmt.Errorf("%w: external psk %x given twice", ErrInvalidProposal, p.ID)
		}
		psks[string(p.ID)] = bytes.Clone(p.Secret)
	}
	old := &Group{
		suite:           s,
		config:          opts.Config,
		policy:          opts.Policy,
		ctx:             cloneGroupContext(&gi.GroupContext),
		tree:            tree,
		confirmationTag: bytes.Clone(gi.ConfirmationTag),
		interim:         InterimTranscriptHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag),
		psks:            psks,
	}
	proposals := []Proposal{{Type: ProposalExternalInit, ExternalInit: &ExternalInitProposal{KEMOutput: kemOutput}}}
	if opts.Resync {
		for _, l := range tree.Members() {
			if tree.LeafNode(l).Credential.Equal(&signer.Credential) {
				proposals = append(proposals, Proposal{Type: ProposalRemove, Remove: &RemoveProposal{Removed: l}})
				break
			}
		}
	}
	for _, p := range opts.PSKs {
		pp, err := externalPSKProposal(s, p.ID)
		if err != nil {
			return nil, nil, err
		}
		proposals = append(proposals, pp)
	}
	ng := &Group{
		suite:          s,
		config:         opts.Config,
		policy:         opts.Policy,
		ctx:            cloneGroupContext(&old.ctx),
		tree:           tree.Clone(),
		sigPriv:        bytes.Clone(signer.SignaturePriv),
		resumption:     map[uint64][]byte{},
		psks:           psks,
		pendingUpdates: map[string][]byte{},
	}
	sender := Sender{Type: SenderNewMemberCommit}
	list := make([]resolvedProposal, len(proposals))
	for i := range proposals {
		list[i] = resolvedProposal{proposal: &proposals[i], sender: sender}
	}
	if err := old.validateProposalList(list, sender, true, true); err != nil {
		return nil, nil, err
	}
	pskSecret, err := old.pskSecret(pskIDsOf(list))
	if err != nil {
		return nil, nil, err
	}
	defer clear(pskSecret)
	if _, err := ng.applyProposals(list); err != nil {
		return nil, nil, err
	}
	extTypes := append([]ExtensionType{}, opts.ExtensionTypes...)
	for _, e := range gi.GroupContext.Extensions {
		extTypes = append(extTypes, e.Type)
	}
	now := time.Now()
	tmpl := &LeafNode{
		SignatureKey: bytes.Clone(signer.SignaturePub),
		Credential:   *cloneCredential(&signer.Credential),
		Capabilities: defaultCapabilities(s.ID(), extTypes, signer),
		Source:       LeafNodeSourceKeyPackage,
		Lifetime:     &Lifetime{NotBefore: uint64(now.Unix()), NotAfter: uint64(now.Unix())},
		Extensions:   []Extension{},
	}
	// A placeholder leaf reserves the leftmost blank leaf; GeneratePath
	// replaces it with the signed commit leaf.
	tmpPriv, tmpPub, err := s.GenerateKeyPair()
	if err != nil {
		return nil, nil, err
	}
	clear(tmpPriv)
	placeholder := tmpl.Clone()
	placeholder.EncryptionKey = tmpPub
	self, err := ng.tree.AddLeaf(placeholder)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRequiredCapabilities(ng.ctx.Extensions, tmpl); err != nil {
		return nil, nil, err
	}
	ng.self = self
	ng.ctx.Epoch = old.ctx.Epoch + 1
	pu, err := ng.tree.GeneratePath(s, self, tmpl, signer.SignaturePriv, old.ctx.GroupID)
	if err != nil {
		return nil, nil, err
	}
	defer pu.Wipe()
	ng.ctx.TreeHash = ng.tree.TreeHash(s)
	up, err := ng.tree.EncryptPath(s, pu, ng.ctx.Marshal(), nil)
	if err != nil {
		return nil, nil, err
	}
	ng.priv = pu.Keys.Clone()
	commit := &Commit{Path: up}
	for i := range proposals {
		commit.Proposals = append(commit.Proposals, ProposalOrRef{Type: ProposalOrRefProposal, Proposal: &proposals[i]})
	}
	fc := &FramedContent{
		GroupID:           bytes.Clone(old.ctx.GroupID),
		Epoch:             old.ctx.Epoch,
		Sender:            sender,
		AuthenticatedData: bytes.Clone(opts.AuthenticatedData),
		ContentType:       ContentCommit,
		Commit:            commit,
	}
	if fc.AuthenticatedData == nil {
		fc.AuthenticatedData = []byte{}
	}
	ac, err := SignFramedContent(s, signer.SignaturePriv, WireFormatPublicMessage, fc, &old.ctx)
	if err != nil {
		return nil, nil, err
	}
	confirmed, err := ConfirmedTranscriptHash(s, old.interim, ac)
	if err != nil {
		return nil, nil, err
	}
	ng.ctx.ConfirmedTranscriptHash = confirmed
	joiner, err := DeriveJoinerSecret(s, initSecret, pu.CommitSecret, ng.ctx.Marshal())
	if err != nil {
		return nil, nil, err
	}
	defer clear(joiner)
	if err := ng.installEpoch(joiner, pskSecret); err != nil {
		return nil, nil, err
	}
	tag := ConfirmationTag(s, ng.keys.confirmationKey, confirmed)
	ac.Auth.ConfirmationTag = tag
	ng.confirmationTag = tag
	ng.interim = InterimTranscriptHash(s, confirmed, tag)
	pm, err := ProtectPublic(s, ac, nil, &old.ctx)
	if err != nil {
		return nil, nil, err
	}
	msg := (&MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}).Marshal()
	ng.lastOwnCommit = s.Hash(msg)
	return ng, msg, nil
}

// WelcomeKeyPackageRefs returns the cipher suite of a Welcome MLSMessage
// and the refs of the KeyPackages it is addressed to, so that a client can
// find the private half to join with.
func WelcomeKeyPackageRefs(welcome []byte) (CipherSuite, []KeyPackageRef, error) {
	m, err := ParseMLSMessage(welcome)
	if err != nil {
		return 0, nil, err
	}
	if m.WireFormat != WireFormatWelcome {
		return 0, nil, fmt.Errorf("%w: %v is not a Welcome", ErrInvalidMessage, m.WireFormat)
	}
	refs := make([]KeyPackageRef, len(m.Welcome.Secrets))
	for i, s := range m.Welcome.Secrets {
		refs[i] = s.NewMember
	}
	return m.Welcome.CipherSuite, refs, nil
}
