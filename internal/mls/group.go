package mls

import (
	"bytes"
	"errors"
	"slices"
)

// This file holds the Group: one client's view of one MLS group in one
// epoch (RFC 9420 §8–§12), with the accessors applications use. Creating a
// group is in group_create.go, committing in group_commit.go, receiving in
// group_process.go, joining in group_join.go and persistence in
// group_state.go.
//
// A Group is a value that changes only when an operation succeeds: every
// operation works on copies and installs them at its very end, so an error
// leaves the group exactly as it was. A Group is not safe for concurrent
// use.

// Sentinel errors of the group state machine. Errors wrap them (errors.Is).
var (
	// ErrWrongEpoch: a handshake message is for an epoch other than the
	// group's current one (for example a commit that lost a race).
	ErrWrongEpoch = errors.New("mls: message is for another epoch")
	// ErrWrongGroup: the message belongs to another group.
	ErrWrongGroup = errors.New("mls: message is for another group")
	// ErrInvalidCommit: a commit or its proposal list is not valid.
	ErrInvalidCommit = errors.New("mls: invalid commit")
	// ErrInvalidProposal: a proposal is not valid in this group.
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrPendingCommit: the operation is not allowed while a commit of this
	// client waits to be merged or discarded.
	ErrPendingCommit = errors.New("mls: a commit is pending")
	// ErrNoPendingCommit: MergePendingCommit or DiscardPendingCommit without
	// a pending commit.
	ErrNoPendingCommit = errors.New("mls: no pending commit")
	// ErrNotMember: this client is no longer a member of the group.
	ErrNotMember = errors.New("mls: not a member of the group")
	// ErrUnknownPSK: a PreSharedKey needed by a message is not known.
	ErrUnknownPSK = errors.New("mls: unknown pre-shared key")
	// ErrNoMatchingKeyPackage: a Welcome is not addressed to the given
	// KeyPackage.
	ErrNoMatchingKeyPackage = errors.New("mls: Welcome is not for this KeyPackage")
	// ErrEpochTooOld: an application message is from an epoch whose keys are
	// no longer kept.
	ErrEpochTooOld = errors.New("mls: epoch keys no longer kept")
)

// DefaultMaxPastEpochs is the default number of past epochs whose
// application keys are kept for late messages.
const DefaultMaxPastEpochs = 2

// Config tunes a Group. The zero value selects the defaults.
type Config struct {
	// MaxPastEpochs is how many past epochs keep their application keys
	// for late messages (DefaultMaxPastEpochs if 0, none if negative).
	MaxPastEpochs int
	// MaxForwardDistance is how far ahead of the last generation received
	// from a sender a message may be (the out-of-order window). 0 selects
	// the secret tree's default.
	MaxForwardDistance uint32
	// OutOfOrderTolerance is how many skipped keys per sender are kept for
	// messages that arrive late within an epoch. 0 selects the default.
	OutOfOrderTolerance uint32
	// PaddingBlock pads the content of PrivateMessages to a multiple of
	// this many bytes (0: no padding).
	PaddingBlock uint32
	// PublicHandshake sends proposals and commits as PublicMessages
	// (readable by the delivery service) instead of PrivateMessages.
	PublicHandshake bool
}

func (c Config) maxPastEpochs() int {
	switch {
	case c.MaxPastEpochs == 0:
		return DefaultMaxPastEpochs
	case c.MaxPastEpochs < 0:
		return 0
	}
	return c.MaxPastEpochs
}

func (c *Config) append(b []byte) []byte {
	b = AppendUint32(b, uint32(int32(c.MaxPastEpochs)))
	b = AppendUint32(b, c.MaxForwardDistance)
	b = AppendUint32(b, c.OutOfOrderTolerance)
	b = AppendUint32(b, c.PaddingBlock)
	return AppendBool(b, c.PublicHandshake)
}

func (r *Reader) readGroupConfig() Config {
	return Config{
		MaxPastEpochs:       int(int32(r.Uint32())),
		MaxForwardDistance:  r.Uint32(),
		OutOfOrderTolerance: r.Uint32(),
		PaddingBlock:        r.Uint32(),
		PublicHandshake:     r.Bool(),
	}
}

// Member is one member of the group as the application sees it.
type Member struct {
	Leaf         LeafIndex
	Identity     []byte // the basic credential identity
	Credential   Credential
	SignatureKey []byte
}

// Group is one client's state of one MLS group. See the file comment.
type Group struct {
	suite  Suite
	config Config
	// policy holds the application's decisions (policy.go); it is not
	// stored.
	policy Policy

	ctx             GroupContext
	interim         []byte // interim transcript hash
	confirmationTag []byte // of the commit that started this epoch
	tree            *RatchetTree

	self    LeafIndex
	sigPriv []byte
	signKey *signingKey      // sigPriv parsed (signkey.go), shared by clones
	priv    *TreePrivateKeys // HPKE private keys of my leaf and path

	keys epochKeys
	past []*pastEpoch // oldest first

	// resumption holds the resumption PSKs of recent epochs, by epoch.
	resumption map[uint64][]byte
	// psks are the external PSKs known to this client, by PSK id.
	psks map[string][]byte

	proposals      []cachedProposal  // received or sent in this epoch
	pendingUpdates map[string][]byte // my Update proposals' leaf keys, by ref

	pending       *pendingCommit
	lastOwnCommit []byte // hash of the last own commit that was merged

	// removed is set when a commit removed this client; the group then
	// only serves late application messages.
	removed bool
	// reinit is the ReInit proposal of the commit that ended the group.
	reinit *ReInitProposal
	// welcomeExtensions are the application's GroupInfo extensions of the
	// Welcome this group was joined by (not stored).
	welcomeExtensions []Extension
	// resume is set only while the first commit of a reinitialized or
	// branched group is built (reinit.go).
	resume *resumeSource
	// unsaved is what changed since the group was decoded or marked
	// saved (group_ratchets.go); it is not stored.
	unsaved Unsaved
}

// epochKeys are the secrets of one epoch that are kept while it is current.
type epochKeys struct {
	initSecret         []byte // for the next epoch
	senderDataSecret   []byte
	exporterSecret     []byte
	epochAuthenticator []byte
	externalSecret     []byte
	confirmationKey    []byte
	membershipKey      []byte
	resumptionPSK      []byte
	secretTree         *SecretTree
}

// pastEpoch is what is kept of an old epoch to read late application
// messages: the sender-data secret, the secret tree and the members'
// credentials and signature keys. The members are those of the epoch's
// ratchet tree, kept as it is (a tree a Group installed is never written
// again: every operation changes a clone), or, for a group restored from
// storage, senders.
type pastEpoch struct {
	epoch            uint64
	ctx              GroupContext
	senderDataSecret []byte
	secretTree       *SecretTree
	tree             *RatchetTree  // the epoch's tree, or nil
	senders          []*pastSender // without tree: by leaf index, nil for a blank leaf
}

// pastSender is a member of a past epoch, as needed to authenticate its
// late messages. Its slices are never written to.
type pastSender struct {
	credential   Credential
	signatureKey []byte
}

// numSenders returns the number of leaves of the epoch's tree.
func (p *pastEpoch) numSenders() uint32 {
	if p.tree != nil {
		return p.tree.NumLeaves()
	}
	return uint32(len(p.senders))
}

func (p *pastEpoch) sender(l LeafIndex) *pastSender {
	if p.tree != nil {
		ln := p.tree.LeafNode(l)
		if ln == nil {
			return nil
		}
		return &pastSender{credential: ln.Credential, signatureKey: ln.SignatureKey}
	}
	if uint64(l) >= uint64(len(p.senders)) {
		return nil
	}
	return p.senders[l]
}

// cachedProposal is a proposal received (or sent) in the current epoch, by
// reference.
type cachedProposal struct {
	ref      ProposalRef
	proposal Proposal
	sender   Sender
	msgHash  []byte // hash of the MLSMessage, for this client's own proposals
}

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return g.ctx.CipherSuite }

// GroupID returns the group's id (a copy).
func (g *Group) GroupID() []byte { return bytes.Clone(g.ctx.GroupID) }

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 { return g.ctx.Epoch }

// OwnLeaf returns this client's leaf index.
func (g *Group) OwnLeaf() LeafIndex { return g.self }

// Active reports whether this client is still a member of the group (it
// was not removed and the group was not reinitialized).
func (g *Group) Active() bool { return !g.removed && g.reinit == nil }

// EpochAuthenticator returns the epoch authenticator of the current epoch
// (RFC 9420 §8.7): members that agree on it share the same group state.
func (g *Group) EpochAuthenticator() []byte { return bytes.Clone(g.keys.epochAuthenticator) }

// Export derives a secret of length bytes from the current epoch for an
// application purpose named by label (MLS-Exporter, RFC 9420 §8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	return Export(g.suite, g.keys.exporterSecret, label, context, length)
}

// GroupContext returns a copy of the current GroupContext.
func (g *Group) GroupContext() GroupContext { return cloneGroupContext(&g.ctx) }

// Extensions returns a copy of the GroupContext extensions.
func (g *Group) Extensions() []Extension { return cloneExtensions(g.ctx.Extensions) }

// Extension returns the data of the GroupContext extension of type t.
func (g *Group) Extension(t ExtensionType) ([]byte, bool) {
	e, ok := FindExtension(g.ctx.Extensions, t)
	if !ok {
		return nil, false
	}
	return bytes.Clone(e.Data), true
}

// Members lists the current members, in leaf order.
func (g *Group) Members() []Member {
	return treeMembers(g.tree)
}

// MemberCount is len(g.Members()), without copying the members out.
func (g *Group) MemberCount() int {
	n := 0
	for i := uint32(0); i < g.tree.NumLeaves(); i++ {
		if g.tree.nodes.at(NodeIndex(2*i)).Leaf != nil {
			n++
		}
	}
	return n
}

// Member returns the member at leaf i.
func (g *Group) Member(i LeafIndex) (Member, bool) {
	ln := g.tree.LeafNode(i)
	if ln == nil {
		return Member{}, false
	}
	return leafMember(i, ln), true
}

// CredentialTypesOf returns the credential types the leaf of member i
// supports (its capabilities, RFC 9420 §7.2): a member that lacks a type
// keeps a client of that type out of the group until it updates.
func (g *Group) CredentialTypesOf(i LeafIndex) ([]CredentialType, bool) {
	ln := g.tree.LeafNode(i)
	if ln == nil {
		return nil, false
	}
	return slices.Clone(ln.Capabilities.Credentials), true
}

// MemberByIdentity returns the member whose basic credential identity is
// identity.
func (g *Group) MemberByIdentity(identity []byte) (Member, bool) {
	for _, l := range g.tree.Members() {
		ln := g.tree.LeafNode(l)
		if ln.Credential.Type == CredentialBasic && bytes.Equal(ln.Credential.Identity, identity) {
			return leafMember(l, ln), true
		}
	}
	return Member{}, false
}

// RatchetTree returns the public ratchet tree in its wire form (the
// ratchet_tree extension encoding), for joiners that get it out of band.
func (g *Group) RatchetTree() []byte { return g.tree.Marshal() }

// AddPSK makes an external pre-shared key known to the group, for
// PreSharedKey proposals and Welcomes that reference it.
func (g *Group) AddPSK(id, psk []byte) {
	defer g.changedState()
	if g.psks == nil {
		g.psks = map[string][]byte{}
	}
	g.psks[string(id)] = bytes.Clone(psk)
}

// HasPendingCommit reports whether a commit of this client waits to be
// merged or discarded.
func (g *Group) HasPendingCommit() bool { return g.pending != nil }

// PendingProposals returns the number of proposals received in this epoch
// and not yet committed.
func (g *Group) PendingProposals() int { return len(g.proposals) }

func treeMembers(t *RatchetTree) []Member {
	var out []Member
	for _, i := range t.Members() {
		out = append(out, leafMember(i, t.LeafNode(i)))
	}
	return out
}

func leafMember(i LeafIndex, ln *LeafNode) Member {
	return Member{
		Leaf:         i,
		Identity:     bytes.Clone(ln.Credential.Identity),
		Credential:   *cloneCredential(&ln.Credential),
		SignatureKey: bytes.Clone(ln.SignatureKey),
	}
}

func cloneCredential(c *Credential) *Credential {
	out := &Credential{Type: c.Type, Identity: bytes.Clone(c.Identity)}
	for _, cert := range c.Certificates {
		out.Certificates = append(out.Certificates, bytes.Clone(cert))
	}
	return out
}

func cloneGroupContext(c *GroupContext) GroupContext {
	return GroupContext{
		Version:                 c.Version,
		CipherSuite:             c.CipherSuite,
		GroupID:                 bytes.Clone(c.GroupID),
		Epoch:                   c.Epoch,
		TreeHash:                bytes.Clone(c.TreeHash),
		ConfirmedTranscriptHash: bytes.Clone(c.ConfirmedTranscriptHash),
		Extensions:              cloneExtensions(c.Extensions),
	}
}

// clone returns a copy of g whose mutable parts (maps, tree, secret trees,
// caches) can be changed without touching g. It first fills g's tree caches,
// so that what the copy computes on a cold tree is not lost with a copy
// that is discarded. Immutable byte slices are
// shared: the package never writes into a secret slice it keeps, it only
// replaces it.
func (g *Group) clone() *Group {
	c := *g
	c.ctx = cloneGroupContext(&g.ctx)
	g.tree.warm(g.suite)
	c.tree = g.tree.Clone()
	c.priv = g.priv.Clone()
	c.keys.secretTree = g.keys.secretTree.Clone()
	c.past = make([]*pastEpoch, len(g.past))
	for i, p := range g.past {
		cp := *p
		cp.secretTree = p.secretTree.Clone()
		c.past[i] = &cp // the senders and context are never modified
	}
	c.resumption = cloneKeyMap(g.resumption)
	c.psks = cloneKeyMap(g.psks)
	c.proposals = slices.Clone(g.proposals)
	c.pendingUpdates = cloneKeyMap(g.pendingUpdates)
	c.unsaved = UnsavedState // a new state, stored by nobody yet
	return &c
}

func cloneKeyMap[K comparable](m map[K][]byte) map[K][]byte {
	out := make(map[K][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkActive returns an error if this client may not send in the group.
func (g *Group) checkActive() error {
	if g.removed {
		return ErrNotMember
	}
	if g.reinit != nil {
		return errReInitialized()
	}
	return nil
}

// wipeSuperseded zeroes the secrets of old's epoch once a new state has
// replaced it: the epoch secrets (but the sender-data secret and the
// resumption PSK, which live on in the past epochs), the secret tree, the
// path private keys and the Update keys. The secret tree and the private
// keys must not be shared with the new state (it keeps copies).
func wipeSuperseded(old *Group) {
	k := &old.keys
	for _, v := range [][]byte{k.initSecret, k.exporterSecret, k.externalSecret, k.confirmationKey, k.membershipKey} {
		clear(v)
	}
	if k.secretTree != nil {
		k.secretTree.Clear()
	}
	// The new state holds its own copy of the path keys it still needs
	// (clone is deep for them) and none of the old Update keys.
	if old.priv != nil {
		old.priv.Wipe()
	}
	for _, v := range old.pendingUpdates {
		clear(v)
	}
}

// configureSecretTree applies the group's receive window to st.
func (g *Group) configureSecretTree(st *SecretTree) {
	if g.config.MaxForwardDistance != 0 {
		st.MaxForwardDistance = g.config.MaxForwardDistance
	}
	if g.config.OutOfOrderTolerance != 0 {
		st.OutOfOrderTolerance = int(g.config.OutOfOrderTolerance)
	}
}
