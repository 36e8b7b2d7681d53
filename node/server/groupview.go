package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/store"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// This file is the node's judgement of handshake messages: it keeps each
// group's public view (mls.PublicGroup, stored by the store next to the
// group's epoch) and decides, inside the store's transaction, whether a
// commit or proposal is valid on it, who the members are afterwards and who
// receives what. The roster is always the set of the tree's leaf
// signature keys (devices, each with its own queue): what a sender lists
// is never used.
//
// Every leaf that enters a view passes the identity-binding rule members
// apply (devid.Rule: a basic credential names its own signature key, an
// x509 credential chains to its user and names the leaf's key), may not
// be a revoked device's, and a device certified by user U must be in U's
// current device list at the node (leafRule).

// leafRule is the node's IdentityProvider for public views: devid.Rule,
// no leaf of a revoked device, none of a device its user does not list.
type leafRule struct {
	rule    devid.Rule
	revoked func(key []byte) (bool, error)
	listed  func(device, user []byte) (bool, error)
}

var (
	// errRevokedLeaf: a leaf whose signature key is a revoked device.
	errRevokedLeaf = errors.New("the leaf's device is revoked")
	// errUnlistedLeaf: a leaf whose x509 credential certifies a device
	// that is not in its user's current device list.
	errUnlistedLeaf = errors.New("the leaf's device is not in its user's device list")
)

// leafUser returns the user of leaf by devid.Rule, and whether the leaf is
// a device of another key than the user's (it must then be listed).
func leafUser(rule devid.Rule, leaf *mls.LeafInfo) ([]byte, bool, error) {
	u, err := rule.User(&leaf.Credential, leaf.SignatureKey)
	if err != nil {
		return nil, false, err
	}
	return u, leaf.Credential.Type == mls.CredentialX509 && !bytes.Equal(u, leaf.SignatureKey), nil
}

func unlisted(device, user []byte) error {
	return fmt.Errorf("%w: device %x of user %x", errUnlistedLeaf, device, user)
}

func (r leafRule) ValidateLeaf(leaf *mls.LeafInfo) error {
	user, device, err := leafUser(r.rule, leaf)
	if err != nil {
		return err
	}
	if r.revoked != nil {
		revoked, err := r.revoked(leaf.SignatureKey)
		if err != nil {
			return err
		}
		if revoked {
			return fmt.Errorf("%w: %x", errRevokedLeaf, leaf.SignatureKey)
		}
	}
	if device && r.listed != nil {
		ok, err := r.listed(leaf.SignatureKey, user)
		if err != nil {
			return err
		}
		if !ok {
			return unlisted(leaf.SignatureKey, user)
		}
	}
	return nil
}

func (r leafRule) ValidSuccessor(prev mls.Member, next *mls.LeafInfo) error {
	return r.rule.ValidSuccessor(prev, next)
}

// leafRule returns the rule of this session's views.
func (s *session) leafRule(ctx context.Context) mls.IdentityProvider {
	return leafRule{
		revoked: func(key []byte) (bool, error) { return s.srv.isRevoked(ctx, key) },
		listed:  func(device, user []byte) (bool, error) { return s.srv.isListedBy(ctx, device, user) },
	}
}

// maxRuleAttempts bounds how often inTxRule runs a store call.
const maxRuleAttempts = 3

// txRule is leafRule for a view judged inside a store transaction: it asks
// only the node's caches, so that no store call is made while the
// transaction holds a connection (a pool of them could run dry). A device
// the caches have no fresh answer for is noted, and pending then refuses
// the callback; inTxRule looks all the noted keys up outside the
// transaction in one batched lookup and runs the store call again, which
// then knows every leaf (a commit is judged twice, not once per device).
type txRule struct {
	srv     *Server
	learned map[[32]byte]deviceState // looked up by inTxRule since the first attempt; read only here
	mu      sync.Mutex               // internal/mls may judge a commit's new leaves in parallel
	missed  [][]byte
}

func (r *txRule) ValidateLeaf(leaf *mls.LeafInfo) error {
	user, device, err := leafUser(devid.Rule{}, leaf)
	if err != nil {
		return err
	}
	revoked, ok := r.srv.revoked.get(leaf.SignatureKey, time.Now())
	listed := !device || r.srv.listings.has(leaf.SignatureKey, user)
	if k, isKey := toKey32(leaf.SignatureKey); (!ok || !listed) && isKey {
		var st deviceState
		if st, ok = r.learned[k]; ok {
			revoked = st.revoked
			listed = !device || st.listedBy(user)
		}
	}
	switch {
	case !ok:
		r.mu.Lock()
		r.missed = append(r.missed, bytes.Clone(leaf.SignatureKey))
		r.mu.Unlock()
	case revoked:
		return fmt.Errorf("%w: %x", errRevokedLeaf, leaf.SignatureKey)
	case !listed:
		return unlisted(leaf.SignatureKey, user)
	}
	return nil
}

func (r *txRule) ValidSuccessor(prev mls.Member, next *mls.LeafInfo) error {
	return (devid.Rule{}).ValidSuccessor(prev, next)
}

// pending refuses a callback that met a device of unknown state.
func (r *txRule) pending() error {
	if len(r.missed) > 0 {
		return errRevocationUnknown
	}
	return nil
}

// errRevocationUnknown: a leaf whose device the caches know nothing of
// yet (see txRule).
var errRevocationUnknown = errors.New("a leaf's device is not known to be unrevoked and listed yet")

// inTxRule runs fn, a store call whose callback judges a view with rule
// and ends with rule.pending(), until no device was unknown. A refused
// callback stores nothing, so running it again is safe.
func (s *session) inTxRule(ctx context.Context, method string, fn func(rule *txRule) error) error {
	// Keys looked up between attempts count as known for this call even
	// when the cache's answer has gone stale meanwhile (a commit adding
	// hundreds of leaves takes longer to look up than the cache keeps an
	// answer).
	learned := make(map[[32]byte]deviceState)
	for attempt := 1; ; attempt++ {
		rule := &txRule{srv: s.srv, learned: learned}
		err := fn(rule)
		if !errors.Is(err, errRevocationUnknown) {
			return err
		}
		// Another attempt while the last one learned something new: the
		// leaves judged per attempt can differ (internal/mls judges a
		// commit's leaves in parallel and may stop early), and every
		// attempt adds at least one key, so this ends.
		progress := false
		for _, k := range rule.missed {
			if k32, ok := toKey32(k); ok {
				if _, seen := learned[k32]; !seen {
					progress = true
				}
			}
		}
		if attempt >= maxRuleAttempts && !progress {
			return fail(nodecp.ErrorCode_internal, "%s: could not learn whether %d of the leaves' devices are revoked (%d looked up); retry", method, len(rule.missed), len(learned))
		}
		// Every unknown device of this attempt in one lookup: the next
		// attempt knows them all.
		var keys [][]byte
		asked := make(map[[32]byte]bool, len(rule.missed))
		for _, k := range rule.missed {
			k32, ok := toKey32(k)
			if _, seen := learned[k32]; !ok || seen || asked[k32] {
				continue
			}
			asked[k32] = true
			keys = append(keys, k)
		}
		states, err := s.srv.deviceStates(ctx, keys)
		if err != nil {
			return s.storeError(method, err)
		}
		for i, k := range keys {
			learned[[32]byte(k)] = states[i]
		}
	}
}

// memberIdentities lists the distinct signature keys of the view's
// members, refusing a leaf whose key is not an Ed25519 key (the node
// addresses queues by device key).
func memberIdentities(members []mls.Member) ([][]byte, error) {
	out := make([][]byte, 0, len(members))
	seen := make(map[[store.IdentityKeySize]byte]bool, len(members))
	for _, m := range members {
		if len(m.SignatureKey) != store.IdentityKeySize {
			return nil, fmt.Errorf("leaf %d has a signature key of %d bytes, want an Ed25519 key", m.Leaf, len(m.SignatureKey))
		}
		k := [store.IdentityKeySize]byte(m.SignatureKey)
		if !seen[k] {
			seen[k] = true
			out = append(out, k[:])
		}
	}
	return out, nil
}

func containsKey(list [][]byte, k []byte) bool {
	return slices.ContainsFunc(list, func(x []byte) bool { return bytes.Equal(x, k) })
}

// invalidCommit reports a handshake message the view refuses.
func invalidCommit(method string, err error) error {
	return fail(nodecp.ErrorCode_invalidCommit, "%s: %v", method, err)
}

// newGroupView checks a creator's GroupInfo: valid on its own, every leaf
// passing rule, signed by the creator's leaf. It returns the view, its
// encoding and the roster.
func newGroupView(method string, rule mls.IdentityProvider, creator, groupInfo []byte) (*mls.PublicGroup, []byte, [][]byte, error) {
	pg, err := mls.NewPublicGroup(groupInfo)
	if err != nil {
		return nil, nil, nil, fail(nodecp.ErrorCode_invalidArgument, "%s: groupInfo: %v", method, err)
	}
	pg.SetIdentityProvider(rule)
	if err := pg.ValidateMembers(); err != nil {
		return nil, nil, nil, fail(nodecp.ErrorCode_unauthorized, "%s: groupInfo: %v", method, err)
	}
	m, _ := mls.ParseMLSMessage(groupInfo) // parsed by NewPublicGroup already
	signer, ok := pg.Member(m.GroupInfo.Signer)
	if !ok || !bytes.Equal(signer.SignatureKey, creator) {
		return nil, nil, nil, fail(nodecp.ErrorCode_unauthorized, "%s: the GroupInfo is not signed by a leaf of %x", method, creator)
	}
	roster, err := memberIdentities(pg.Members())
	if err != nil {
		return nil, nil, nil, fail(nodecp.ErrorCode_invalidArgument, "%s: groupInfo: %v", method, err)
	}
	view, err := pg.MarshalBinary()
	if err != nil {
		return nil, nil, nil, err
	}
	return pg, view, roster, nil
}

// loadView decodes a stored view and sets its rule. A view that does not decode is the
// node's own failure.
func loadView(method string, rule mls.IdentityProvider, b []byte) (*mls.PublicGroup, error) {
	pg, err := mls.UnmarshalPublicGroup(b)
	if err != nil {
		return nil, fmt.Errorf("%s: stored view: %w", method, err)
	}
	pg.SetIdentityProvider(rule)
	return pg, nil
}

// commitVerdict applies a commit submitted by sender to the stored view and
// returns what the store keeps: the new view and roster, the commit's
// recipients (every member but the sender, and the members it removes, so
// that they learn of their removal) and the Welcome's (the members it
// adds). Only the sender's own commit counts: a member commit must be
// signed by a leaf of the sender, an external commit must resync the
// sender's own leaf.
func commitVerdict(method string, rule mls.IdentityProvider, sender, commit, welcome []byte, cur store.GroupView) (store.CommitVerdict, error) {
	pg, err := loadView(method, rule, cur.View)
	if err != nil {
		return store.CommitVerdict{}, err
	}
	res, err := pg.ApplyCommit(commit)
	switch {
	case err != nil:
		// mls.ErrWrongEpoch too: the header named the current epoch, so
		// the body disagrees with it.
		return store.CommitVerdict{}, invalidCommit(method, err)
	case !bytes.Equal(res.Committer.SignatureKey, sender):
		return store.CommitVerdict{}, fail(nodecp.ErrorCode_unauthorized, "%s: the commit is signed by leaf %d of %x, not by %x",
			method, res.Committer.Leaf, res.Committer.SignatureKey, sender)
	case res.External && (len(res.Removed) != 1 || !bytes.Equal(res.Removed[0].SignatureKey, sender)):
		return store.CommitVerdict{}, fail(nodecp.ErrorCode_unauthorized, "%s: an external commit may only resync the sender's own leaf", method)
	case len(res.Added) > 0 && len(welcome) == 0:
		return store.CommitVerdict{}, fail(nodecp.ErrorCode_invalidArgument, "%s: the commit adds %d members but comes without a Welcome", method, len(res.Added))
	case len(res.Added) == 0 && len(welcome) > 0:
		return store.CommitVerdict{}, fail(nodecp.ErrorCode_invalidArgument, "%s: a Welcome with a commit that adds nobody", method)
	}
	v := store.CommitVerdict{}
	if v.Roster, err = memberIdentities(pg.Members()); err != nil {
		return store.CommitVerdict{}, invalidCommit(method, err)
	}
	if v.WelcomeRecipients, err = memberIdentities(res.Added); err != nil {
		return store.CommitVerdict{}, invalidCommit(method, err)
	}
	removed, err := memberIdentities(res.Removed)
	if err != nil {
		return store.CommitVerdict{}, invalidCommit(method, err)
	}
	for _, k := range append(slices.Clip(v.Roster), removed...) {
		if !bytes.Equal(k, sender) && !containsKey(v.WelcomeRecipients, k) && !containsKey(v.Recipients, k) {
			v.Recipients = append(v.Recipients, k)
		}
	}
	if v.View, err = pg.MarshalBinary(); err != nil {
		return store.CommitVerdict{}, err
	}
	return v, nil
}

// proposalUpdate checks a proposal sent by sender on the stored view and
// returns the view that keeps it for commits by reference. Only the
// sender's own leaf may propose through the node.
func proposalUpdate(method string, rule mls.IdentityProvider, sender, msg []byte, cur store.GroupView) ([]byte, error) {
	pg, err := loadView(method, rule, cur.View)
	if err != nil {
		return nil, err
	}
	p, err := pg.ProcessProposal(msg)
	if err != nil {
		return nil, invalidCommit(method, err)
	}
	if p.SenderType != mls.SenderMember || !bytes.Equal(p.Sender.SignatureKey, sender) {
		return nil, fail(nodecp.ErrorCode_unauthorized, "%s: the proposal is not from a leaf of %x", method, sender)
	}
	return pg.MarshalBinary()
}

// toKey32 returns k as a map key when it has the size of a device key.
func toKey32(k []byte) ([32]byte, bool) {
	if len(k) != 32 {
		return [32]byte{}, false
	}
	return [32]byte(k), true
}
