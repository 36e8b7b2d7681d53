package server

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/store"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// This file is the node's judgement of handshake messages: it keeps each
// group's public view (mls.PublicGroup, stored by the store next to the
// group's epoch) and decides, inside the store's transaction, whether a
// commit or proposal is valid on it, who the members are afterwards and who
// receives what. The roster is always the set of the tree's leaf
// identities: what a sender lists is never used.

// memberIdentities lists the distinct identities of the view's members,
// refusing a leaf whose identity is not an identity key (the node addresses
// queues by identity key).
func memberIdentities(members []mls.Member) ([][]byte, error) {
	out := make([][]byte, 0, len(members))
	seen := make(map[[store.IdentityKeySize]byte]bool, len(members))
	for _, m := range members {
		if len(m.Identity) != store.IdentityKeySize {
			return nil, fmt.Errorf("leaf %d has an identity of %d bytes, want an identity key", m.Leaf, len(m.Identity))
		}
		k := [store.IdentityKeySize]byte(m.Identity)
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

// newGroupView checks a creator's GroupInfo: valid on its own, signed by a
// leaf of the creator. It returns the view, its encoding and the roster.
func newGroupView(method string, creator, groupInfo []byte) (*mls.PublicGroup, []byte, [][]byte, error) {
	pg, err := mls.NewPublicGroup(groupInfo)
	if err != nil {
		return nil, nil, nil, fail(nodecp.ErrorCode_invalidArgument, "%s: groupInfo: %v", method, err)
	}
	m, _ := mls.ParseMLSMessage(groupInfo) // parsed by NewPublicGroup already
	signer, ok := pg.Member(m.GroupInfo.Signer)
	if !ok || !bytes.Equal(signer.Identity, creator) {
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

// loadView decodes a stored view. A view that does not decode is the
// node's own failure.
func loadView(method string, b []byte) (*mls.PublicGroup, error) {
	pg, err := mls.UnmarshalPublicGroup(b)
	if err != nil {
		return nil, fmt.Errorf("%s: stored view: %w", method, err)
	}
	return pg, nil
}

// commitVerdict applies a commit submitted by sender to the stored view and
// returns what the store keeps: the new view and roster, the commit's
// recipients (every member but the sender, and the members it removes, so
// that they learn of their removal) and the Welcome's (the members it
// adds). Only the sender's own commit counts: a member commit must be
// signed by a leaf of the sender, an external commit must resync the
// sender's own leaf.
func commitVerdict(method string, sender, commit, welcome []byte, cur store.GroupView) (store.CommitVerdict, error) {
	pg, err := loadView(method, cur.View)
	if err != nil {
		return store.CommitVerdict{}, err
	}
	res, err := pg.ApplyCommit(commit)
	switch {
	case err != nil:
		// mls.ErrWrongEpoch too: the header named the current epoch, so
		// the body disagrees with it.
		return store.CommitVerdict{}, invalidCommit(method, err)
	case !bytes.Equal(res.Committer.Identity, sender):
		return store.CommitVerdict{}, fail(nodecp.ErrorCode_unauthorized, "%s: the commit is signed by leaf %d of %x, not by %x",
			method, res.Committer.Leaf, res.Committer.Identity, sender)
	case res.External && (len(res.Removed) != 1 || !bytes.Equal(res.Removed[0].Identity, sender)):
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
func proposalUpdate(method string, sender, msg []byte, cur store.GroupView) ([]byte, error) {
	pg, err := loadView(method, cur.View)
	if err != nil {
		return nil, err
	}
	p, err := pg.ProcessProposal(msg)
	if err != nil {
		return nil, invalidCommit(method, err)
	}
	if p.SenderType != mls.SenderMember || !bytes.Equal(p.Sender.Identity, sender) {
		return nil, fail(nodecp.ErrorCode_unauthorized, "%s: the proposal is not from a leaf of %x", method, sender)
	}
	return pg.MarshalBinary()
}
