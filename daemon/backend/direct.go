package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// This file keeps direct chats: the one conversation with one person, an
// MLS group of the two of them that SendTo makes on first use and finds
// again afterwards, on both sides.
//
// Against the threat model:
//   - No one can claim the conversation in advance. Its group id is 16
//     random bytes like any group's, not derived from the two keys (which
//     anyone could register at the node first, and so squat the chat or
//     lock the two out of it).
//   - No one can pose as the person. A joiner records a group as its direct
//     chat with P only when the Welcome marks it so (ExtensionDirect, inside
//     the encrypted GroupInfo) and the group has exactly two members: the
//     joiner and P, read from the ratchet tree (each leaf's credential is its
//     signature key), and P also sent the Welcome. A stranger's direct chat
//     is a chat with that stranger, and it waits for consent like any
//     invitation; a third member added later makes the group an ordinary
//     one (directLive), and the next SendTo opens a new chat.
//   - Both starting at once gives one conversation. Each side then holds
//     two live direct chats with the other; both keep the one with the
//     lower group id (mergeDirectChats) and merge the other into it: its
//     history is copied in, and whatever still arrives in it is stored in
//     the kept one (messageHome). The merged group no longer lists.

// ExtensionDirect marks, in the GroupInfo of a Welcome, a group made as
// the direct chat of its two members. Its data is empty. (0xff00 is
// ExtensionGroupName, 0xff01 ExtensionSuccessor.)
const ExtensionDirect mls.ExtensionType = 0xff02

// directName is the local name of the direct chat with peer.
func directName(peer []byte) string { return "direct:" + FormatKey(peer)[:16] }

// directLive reports whether the group is still the direct chat with
// d.Peer: not merged, not left, and no member but the user and the peer.
func directLive(d store.DirectChat, sg store.Group, g *mls.Group) bool {
	if d.MergedInto != nil || !sg.LeftAt.IsZero() || !g.Active() {
		return false
	}
	own, _ := g.Member(g.OwnLeaf())
	self := userOf(own)
	for _, u := range people(g) {
		if !bytes.Equal(u, d.Peer) && !bytes.Equal(u, self) {
			return false
		}
	}
	return true
}

// liveDirectChats returns the live direct chats with peer, lowest group
// id first.
func liveDirectChats(tx *store.Tx, peer []byte) ([]store.DirectChat, error) {
	ds, err := tx.DirectChats(peer)
	if err != nil {
		return nil, err
	}
	var out []store.DirectChat
	for _, d := range ds {
		if d.MergedInto != nil {
			continue
		}
		sg, g, err := loadGroup(tx, d.GroupID)
		if err != nil {
			return nil, err
		}
		if directLive(d, sg, g) {
			out = append(out, d)
		}
	}
	return out, nil
}

// mergeDirectChats keeps the live direct chat with peer of the lowest
// group id and merges the others into it.
func (b *Backend) mergeDirectChats(tx *store.Tx, peer []byte) error {
	live, err := liveDirectChats(tx, peer)
	if err != nil || len(live) < 2 {
		return err
	}
	keep := live[0].GroupID
	for _, d := range live[1:] {
		d.MergedInto = keep
		if err := tx.PutDirectChat(d); err != nil {
			return err
		}
		n, err := tx.CopyMessages(d.GroupID, keep)
		if err != nil {
			return err
		}
		b.log.Info("direct chat merged", "peer", FormatKey(peer), "group", FormatKey(d.GroupID), "into", FormatKey(keep), "messages", n)
	}
	return nil
}

// messageHome is the group whose history takes the messages of group gid:
// itself, or the direct chat it was merged into.
func messageHome(tx *store.Tx, gid []byte) ([]byte, error) {
	into, err := tx.MergedInto(gid)
	if err != nil || into == nil {
		return gid, err
	}
	return into, nil
}

// noteDirectWelcome records a group joined (and stored as sg) by a Welcome
// of sender as the direct chat with sender, when it is one.
func (b *Backend) noteDirectWelcome(tx *store.Tx, sg *store.Group, g *mls.Group, sender []byte) error {
	if _, ok := mls.FindExtension(g.WelcomeExtensions(), ExtensionDirect); !ok {
		return nil
	}
	// Exactly two people, any number of devices each: this person and
	// the peer; the Welcome came from the peer or from another device of
	// this person's.
	own, _ := g.Member(g.OwnLeaf())
	self := userOf(own)
	ps := people(g)
	var peer []byte
	for _, u := range ps {
		if !bytes.Equal(u, self) {
			peer = u
		}
	}
	if len(ps) != 2 || len(peer) != ed25519.PublicKeySize || (!bytes.Equal(peer, sender) && !bytes.Equal(self, sender)) {
		b.log.Warn("a group marked as a direct chat is none (joined as a group)", "group", FormatKey(sg.ID), "sender", FormatKey(sender), "people", len(ps))
		return nil
	}
	sg.Name = directName(peer)
	if err := tx.PutGroup(*sg); err != nil {
		return err
	}
	if err := tx.PutDirectChat(store.DirectChat{GroupID: sg.ID, Peer: peer}); err != nil {
		return err
	}
	return b.mergeDirectChats(tx, peer)
}

// directWelcomeExtensions are the Welcome extensions that mark group gid
// as a direct chat (none for other groups).
func directWelcomeExtensions(tx *store.Tx, gid []byte) ([]mls.Extension, error) {
	_, err := tx.DirectChat(gid)
	switch {
	case err == nil:
		return []mls.Extension{{Type: ExtensionDirect}}, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	}
	return nil, err
}

// directInfo fills the direct chat fields of gi (mg is its MLS state).
func directInfo(tx *store.Tx, gi *GroupInfo, mg *mls.Group) error {
	d, err := tx.DirectChat(gi.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	gi.MergedInto = d.MergedInto
	if mg == nil || !directLive(d, gi.Group, mg) {
		return nil
	}
	gi.DirectPeer = d.Peer
	switch c, err := tx.Contact(d.Peer); {
	case err == nil:
		gi.DirectPeerName = c.Name
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	return nil
}

// refuseDirectInvite refuses to add anyone to a direct chat: it stays of
// two.
func (b *Backend) refuseDirectInvite(ctx context.Context, group string) error {
	return b.view(ctx, func(tx *store.Tx) error {
		sg, err := resolveGroup(tx, group)
		if err != nil {
			return nil // the invite reports it
		}
		d, err := tx.DirectChat(sg.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("%w: %s is the direct chat with %s, which stays of two; create a group to talk with more people", ErrInvalidArgument, sg.Name, FormatKey(d.Peer))
	})
}

// SendTo sends text to the direct chat with the person ref names (a key or
// a contact, see peers.go), making it and inviting them on first use. It
// answers as Send, and with the chat's group id.
func (b *Backend) SendTo(ctx context.Context, ref, text string, clientMsgID []byte) (SendResult, []byte, error) {
	id, err := b.identity(ctx)
	if err != nil {
		return SendResult{}, nil, err
	}
	peer, err := b.ResolvePeer(ctx, ref)
	if err != nil {
		return SendResult{}, nil, err
	}
	if bytes.Equal(peer, id.UserPublicKey()) {
		return SendResult{}, nil, fmt.Errorf("%w: a direct chat is with someone else", ErrInvalidArgument)
	}
	gid, err := b.openDirect(ctx, peer)
	if err != nil {
		return SendResult{}, nil, err
	}
	res, err := b.Send(ctx, FormatKey(gid), text, clientMsgID)
	if err != nil {
		return SendResult{}, nil, err
	}
	// The chat may have been merged into the peer's between openDirect and
	// Send: the message then joins the kept chat's history too.
	var home []byte
	err = b.update(ctx, func(tx *store.Tx) (err error) {
		if home, err = messageHome(tx, gid); err != nil || bytes.Equal(home, gid) {
			return err
		}
		_, err = tx.CopyMessages(gid, home)
		return err
	})
	if err != nil {
		return SendResult{}, nil, opError("send", err)
	}
	return res, home, nil
}

// openDirect returns the live direct chat with peer, making it and
// inviting peer when there is none (or peer is not in it yet: a chat made
// before a crash or while the node was away).
func (b *Backend) openDirect(ctx context.Context, peer ed25519.PublicKey) ([]byte, error) {
	b.directMu.Lock()
	defer b.directMu.Unlock()
	var gid []byte
	invited := false
	err := b.view(ctx, func(tx *store.Tx) error {
		live, err := liveDirectChats(tx, peer)
		if err != nil || len(live) == 0 {
			return err
		}
		gid = live[0].GroupID
		_, g, err := loadGroup(tx, gid)
		if err != nil {
			return err
		}
		invited = hasUser(g, peer)
		return nil
	})
	if err != nil {
		return nil, opError("direct chat", err)
	}
	if gid == nil {
		gi, err := b.createGroup(ctx, directName(peer), b.cfg.GroupSuite, peer)
		if err != nil {
			return nil, err
		}
		gid = gi.ID
	}
	if !invited {
		if _, _, err := b.runPlan(ctx, FormatKey(gid), commitPlan{kind: intentInvite, peers: []ed25519.PublicKey{peer}}, 0); err != nil {
			return nil, err
		}
	}
	return gid, nil
}
