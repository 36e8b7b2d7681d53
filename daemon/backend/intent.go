package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// A commit intent is what a commit is for (invite these peers, remove this
// member, rotate the own keys, commit the pending proposals), apart from
// the epoch it was built on. It is stored with the pending commit's outbox
// item, so that a commit found stale when it is submitted again after a
// restart or reconnect is built again on the new epoch instead of being
// lost (see resolvePendingLocked and jobRerunIntent).

// intentKind names what a commit intent does.
type intentKind string

// Commit intent kinds.
const (
	intentInvite    intentKind = "invite"    // Peers: the identities to add
	intentRemove    intentKind = "remove"    // Peers: the one member to remove
	intentUpdate    intentKind = "update"    // no peers
	intentProposals intentKind = "proposals" // no peers
	// person.go: this person's other devices not yet in the group
	intentOwnDevices intentKind = "own-devices" // no peers
	// devices.go: adding own devices (after a link), removing a revoked one
	intentAddDevices   intentKind = "add-devices"   // Peers: own device keys to add
	intentRemoveDevice intentKind = "remove-device" // Peers: the one device whose leaves go
)

// intentVersion is the version of the stored intent encoding.
const intentVersion = 1

// maxIntentPeers bounds the peers of a decoded intent.
const maxIntentPeers = 1024

// storedIntent is the stored form of a commit intent: versioned JSON.
type storedIntent struct {
	V     int          `json:"v"`
	Kind  intentKind   `json:"kind"`
	Peers []jsonKeyHex `json:"peers,omitempty"`
}

// jsonKeyHex is an identity key, hex in JSON.
type jsonKeyHex []byte

func (k jsonKeyHex) MarshalJSON() ([]byte, error) { return json.Marshal(FormatKey(k)) }

func (k *jsonKeyHex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := ParseKey(s)
	if err != nil {
		return err
	}
	*k = jsonKeyHex(p)
	return nil
}

// commitPlan is a decoded commit intent.
type commitPlan struct {
	kind  intentKind
	peers []ed25519.PublicKey
}

// errBadIntent tells that a stored commit intent cannot be decoded.
var errBadIntent = errors.New("backend: bad stored commit intent")

func (p commitPlan) encode() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	si := storedIntent{V: intentVersion, Kind: p.kind}
	for _, k := range p.peers {
		si.Peers = append(si.Peers, jsonKeyHex(k))
	}
	return json.Marshal(si)
}

func (p commitPlan) check() error {
	for _, k := range p.peers {
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: peer key of %d bytes", errBadIntent, len(k))
		}
	}
	switch p.kind {
	case intentInvite:
		if len(p.peers) == 0 || len(p.peers) > maxIntentPeers {
			return fmt.Errorf("%w: invite of %d peers", errBadIntent, len(p.peers))
		}
	case intentAddDevices:
		if len(p.peers) == 0 || len(p.peers) > maxIntentPeers {
			return fmt.Errorf("%w: add of %d devices", errBadIntent, len(p.peers))
		}
	case intentRemove, intentRemoveDevice:
		if len(p.peers) != 1 {
			return fmt.Errorf("%w: remove of %d members", errBadIntent, len(p.peers))
		}
	case intentUpdate, intentProposals, intentOwnDevices:
		if len(p.peers) != 0 {
			return fmt.Errorf("%w: %s with peers", errBadIntent, p.kind)
		}
	default:
		return fmt.Errorf("%w: kind %q", errBadIntent, p.kind)
	}
	return nil
}

// decodeCommitPlan decodes a stored intent; anything it does not know is
// an error wrapping errBadIntent.
func decodeCommitPlan(b []byte) (commitPlan, error) {
	var si storedIntent
	if err := json.Unmarshal(b, &si); err != nil {
		return commitPlan{}, fmt.Errorf("%w: %w", errBadIntent, err)
	}
	if si.V != intentVersion {
		return commitPlan{}, fmt.Errorf("%w: version %d", errBadIntent, si.V)
	}
	if len(si.Peers) > maxIntentPeers {
		return commitPlan{}, fmt.Errorf("%w: %d peers", errBadIntent, len(si.Peers))
	}
	p := commitPlan{kind: si.Kind}
	for _, k := range si.Peers {
		p.peers = append(p.peers, ed25519.PublicKey(k))
	}
	if err := p.check(); err != nil {
		return commitPlan{}, err
	}
	return p, nil
}

// runPlan carries a commit intent through runCommit: the one code path of
// Invite, Remove, Update, the commit of pending proposals, and the re-run
// of an intent whose pending commit was found stale. For Invite it returns
// the peers added. rerunOf is 0 for an API call, else the outbox item whose
// intent this runs again: it is closed in the transaction that stores the
// new pending commit, and a member already gone is no error for remove (the
// intent is fulfilled).
func (b *Backend) runPlan(ctx context.Context, group string, p commitPlan, rerunOf int64) (GroupInfo, []ed25519.PublicKey, error) {
	enc, err := p.encode()
	if err != nil {
		return GroupInfo{}, nil, err
	}
	if (p.kind == intentInvite || p.kind == intentOwnDevices) && rerunOf == 0 {
		b.refreshBeforeAdd(ctx, group) // refresh.go
	}
	var added []ed25519.PublicKey
	var intent commitIntent
	switch p.kind {
	case intentInvite:
		intent = b.inviteIntent(p.peers, &added)
	case intentRemove:
		intent = removeIntent(p.peers[0], rerunOf != 0)
	case intentOwnDevices:
		intent = b.ownDevicesIntent()
	case intentAddDevices:
		intent = b.addDevicesIntent(p.peers)
	case intentRemoveDevice:
		intent = removeDeviceIntent(p.peers[0])
	case intentUpdate:
		// The new leaf lists the credential types the signer has now
		// (refresh.go).
		types, err := b.ownCredentialTypes(ctx)
		if err != nil {
			return GroupInfo{}, nil, err
		}
		intent = func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error) {
			res, err := g.SelfUpdate(&mls.CommitOptions{CredentialTypes: types})
			return res, nil, err
		}
	case intentProposals:
		intent = func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error) {
			if g.PendingProposals() == 0 {
				return nil, nil, nil
			}
			res, err := g.Commit(nil)
			return res, nil, err
		}
	}
	gi, err := b.runCommit(ctx, group, enc, rerunOf, intent)
	if err != nil {
		return GroupInfo{}, nil, err
	}
	return gi, added, nil
}

// inviteIntent adds every device of each of peers (persons) not yet in
// the group, and this person's own other devices not yet in it, with
// KeyPackages fetched from the node (person.go), and records the persons
// added in added.
func (b *Backend) inviteIntent(peers []ed25519.PublicKey, added *[]ed25519.PublicKey) commitIntent {
	return func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error) {
		*added = (*added)[:0]
		kps, to, persons, err := b.fetchKeyPackages(ctx, c, g, peers, self)
		if err != nil || len(kps) == 0 {
			return nil, nil, err
		}
		*added = append(*added, persons...)
		return b.addDevices(ctx, g, kps, to)
	}
}

// addDevices commits the Adds of kps (for devices to) to g, the group's
// name (and direct chat mark) in the Welcome.
func (b *Backend) addDevices(ctx context.Context, g *mls.Group, kps []*mls.KeyPackage, to [][]byte) (*mls.CommitResult, [][]byte, error) {
	var exts []mls.Extension
	if err := b.view(ctx, func(tx *store.Tx) error {
		sg, err := tx.Group(g.GroupID())
		if err != nil {
			return err
		}
		exts, err = directWelcomeExtensions(tx, sg.ID)
		exts = append(exts, mls.Extension{Type: ExtensionGroupName, Data: []byte(sg.Name)})
		return err
	}); err != nil {
		return nil, nil, err
	}
	// The name reaches the joiners inside the Welcome only.
	res, err := g.AddMembers(kps, &mls.CommitOptions{WelcomeExtensions: exts})
	if err != nil {
		if mu := membersMustUpdate(g, kps); mu != nil { // refresh.go
			return nil, nil, mu
		}
		return nil, nil, fmt.Errorf("%w: add members: %w", ErrInvalidArgument, err)
	}
	return res, to, nil
}

// fetchKeyPackages fetches from the node and checks KeyPackages in g's
// suite for every device of each of peers (persons) not yet in g, then
// for this person's own other devices not in g (self is this device). It
// returns them with their device keys (the Welcome's recipients) and the
// persons that got a device in.
func (b *Backend) fetchKeyPackages(ctx context.Context, c *nodeclient.Client, g *mls.Group, peers []ed25519.PublicKey, self []byte) ([]*mls.KeyPackage, [][]byte, []ed25519.PublicKey, error) {
	own, _ := g.Member(g.OwnLeaf())
	me := userOf(own)
	var kps []*mls.KeyPackage
	var to [][]byte
	var persons []ed25519.PublicKey
	for _, p := range peers {
		if bytes.Equal(p, self) || bytes.Equal(p, me) {
			return nil, nil, nil, fmt.Errorf("%w: cannot invite yourself", ErrInvalidArgument)
		}
		if hasUser(g, p) {
			continue
		}
		k, d, err := b.personKeyPackages(ctx, c, g, p)
		if err != nil {
			return nil, nil, nil, err
		}
		kps, to, persons = append(kps, k...), append(to, d...), append(persons, p)
	}
	if len(kps) > 0 && me != nil {
		// This person's other devices come along (best effort: the
		// invitation goes on without them).
		k, d, err := b.ownDeviceKeyPackages(ctx, c, g, me, self)
		if err != nil {
			b.log.Warn("own devices not added", "group", FormatKey(g.GroupID()), "err", err)
		}
		kps, to = append(kps, k...), append(to, d...)
	}
	return kps, to, persons, nil
}

// removeIntent removes peer. A peer that is not a member is an error, or,
// on a re-run, nothing left to do.
func removeIntent(peer ed25519.PublicKey, rerun bool) commitIntent {
	return func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error) {
		own, _ := g.Member(g.OwnLeaf())
		if bytes.Equal(peer, self) || bytes.Equal(peer, userOf(own)) {
			return nil, nil, fmt.Errorf("%w: to remove yourself, leave the group", ErrInvalidArgument)
		}
		// The person goes with every device.
		var leaves []mls.LeafIndex
		for _, m := range membersOfUser(g, peer) {
			leaves = append(leaves, m.Leaf)
		}
		if len(leaves) == 0 {
			if rerun {
				return nil, nil, nil
			}
			return nil, nil, fmt.Errorf("%w: %s is not a member", ErrInvalidArgument, FormatKey(peer))
		}
		res, err := g.RemoveMembers(leaves, nil)
		return res, nil, err
	}
}

// intentKindOf names the kind of a stored intent, for logs.
func intentKindOf(b []byte) string {
	p, err := decodeCommitPlan(b)
	if err != nil {
		return "unreadable"
	}
	return string(p.kind)
}

// closeRerun closes outbox item id (0: none) if it still waits in state
// OutboxRerun for its intent to run again.
func closeRerun(tx *store.Tx, id int64, why string) error {
	if id == 0 {
		return nil
	}
	it, err := tx.Outbox(id)
	if err != nil {
		return err
	}
	if it.State != store.OutboxRerun {
		return nil
	}
	return tx.SetOutboxState(id, store.OutboxDropped, why)
}

// rerunIntent is the group job that runs again the intent of a pending
// commit found stale on resubmission (after a restart or reconnect): it
// waits until the receiver has applied the commit that won the epoch, then
// runs the intent as the API call would. The item stays in state
// OutboxRerun until a new pending commit carrying the intent is stored, or
// the intent turns out to have nothing left to do or fails, so a daemon
// stopped in between runs it on its next connection. A failure is logged
// and the item closed: it is not retried (a lost connection is no failure:
// the item waits for the next one).
func (b *Backend) rerunIntent(ctx context.Context, j groupJob) {
	var it store.OutboxItem
	if err := b.view(ctx, func(tx *store.Tx) (err error) { it, err = tx.Outbox(j.item); return }); err != nil {
		if ctx.Err() == nil {
			b.log.Warn("commit intent to run again", "group", FormatKey(j.group), "item", j.item, "err", err)
		}
		return
	}
	if it.State != store.OutboxRerun {
		return // done already (the job was scheduled twice)
	}
	if b.beforeRerun != nil {
		b.beforeRerun(ctx)
	}
	fail := func(err error) {
		if ctx.Err() != nil {
			return // stopping: the item waits for the next start
		}
		if errors.Is(err, ErrNotConnected) {
			// Not a verdict on the intent: it runs on the next connection.
			b.log.Warn("commit intent run again: waits for the next connection", "group", FormatKey(j.group), "intent", intentKindOf(it.Intent), "err", err)
			return
		}
		b.log.Warn("commit intent run again: failed", "group", FormatKey(j.group), "intent", intentKindOf(it.Intent), "err", err)
		if cerr := b.update(ctx, func(tx *store.Tx) error { return closeRerun(tx, j.item, "run again: "+err.Error()) }); cerr != nil {
			b.log.Warn("close commit intent", "group", FormatKey(j.group), "item", j.item, "err", cerr)
		}
	}
	p, err := decodeCommitPlan(it.Intent)
	if err != nil {
		fail(err)
		return
	}
	if err := b.waitEpoch(ctx, j.group, j.epoch); err != nil {
		fail(err)
		return
	}
	gi, added, err := b.runPlan(ctx, FormatKey(j.group), p, j.item)
	if err != nil {
		fail(err)
		return
	}
	// Nothing was left to commit (or the commit closed it already).
	if err := b.update(ctx, func(tx *store.Tx) error { return closeRerun(tx, j.item, "run again: nothing left to do") }); err != nil {
		b.log.Warn("close commit intent", "group", FormatKey(j.group), "item", j.item, "err", err)
	}
	attrs := []any{"group", FormatKey(j.group), "intent", string(p.kind), "epoch", gi.Epoch}
	if p.kind == intentInvite {
		attrs = append(attrs, "added", len(added))
	}
	b.log.Info("commit intent run again on the new epoch", attrs...)
}
