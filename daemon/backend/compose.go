package backend

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// This file sends content messages (content.go): text, replies,
// reactions, edits, deletes, timers and receipts all go the same way, as
// Send: encrypt, apply to the own history, queue for the node, in one
// transaction.

// composer builds the content to send once the group is loaded, inside
// the sending transaction.
type composer func(tx *store.Tx, sg store.Group) (*content.Message, error)

// about composes a message about the group's message ref (see
// resolveMessage).
func about(ref string, build func(content.MessageID) *content.Message) composer {
	return func(tx *store.Tx, sg store.Group) (*content.Message, error) {
		to, err := resolveMessage(tx, sg.ID, ref)
		if err != nil {
			return nil, err
		}
		return build(to.MessageID), nil
	}
}

// Reply sends text replying to the message ref.
func (b *Backend) Reply(ctx context.Context, group, ref, text string, clientMsgID []byte) (SendResult, error) {
	if err := checkText(text); err != nil {
		return SendResult{}, err
	}
	return b.sendContent(ctx, group, clientMsgID, about(ref, func(id content.MessageID) *content.Message { return content.NewReply(id, text) }))
}

// React sends a reaction (an emoji, at most 64 bytes) to the message ref.
func (b *Backend) React(ctx context.Context, group, ref, reaction string, clientMsgID []byte) (SendResult, error) {
	if err := checkText(reaction); err != nil {
		return SendResult{}, err
	}
	if len(reaction) > maxReaction {
		return SendResult{}, fmt.Errorf("%w: reaction of %d bytes, limit %d", ErrInvalidArgument, len(reaction), maxReaction)
	}
	return b.sendContent(ctx, group, clientMsgID, about(ref, func(id content.MessageID) *content.Message { return content.NewReaction(id, reaction) }))
}

// Edit replaces the text of the user's own message ref.
func (b *Backend) Edit(ctx context.Context, group, ref, text string, clientMsgID []byte) (SendResult, error) {
	if err := checkText(text); err != nil {
		return SendResult{}, err
	}
	return b.sendContent(ctx, group, clientMsgID, about(ref, func(id content.MessageID) *content.Message { return content.NewEdit(id, text) }))
}

// Delete deletes the user's own message ref on every member.
func (b *Backend) Delete(ctx context.Context, group, ref string, clientMsgID []byte) (SendResult, error) {
	return b.sendContent(ctx, group, clientMsgID, about(ref, content.NewDelete))
}

// SetDisappearing sets the group's disappearing-messages timer on every
// member (0: off), in whole seconds of at most content.MaxTimer.
func (b *Backend) SetDisappearing(ctx context.Context, group string, after time.Duration) (SendResult, error) {
	if after < 0 || after > content.MaxTimer*time.Second || after%time.Second != 0 {
		return SendResult{}, fmt.Errorf("%w: timer %v: want whole seconds from 0 to %v", ErrInvalidArgument, after, content.MaxTimer*time.Second)
	}
	return b.sendContent(ctx, group, nil, func(*store.Tx, store.Group) (*content.Message, error) {
		return content.NewTimer(uint32(after / time.Second)), nil
	})
}

// sendContent sends what compose builds to a group (Send).
func (b *Backend) sendContent(ctx context.Context, group string, clientMsgID []byte, compose composer) (SendResult, error) {
	return b.sendContentPresigned(ctx, group, clientMsgID, compose, nil)
}

// sendContentPresigned is sendContent; standalone, if not nil, makes a new
// copy of the message compose makes without the transaction, so that it
// may be signed before it (presign.go).
func (b *Backend) sendContentPresigned(ctx context.Context, group string, clientMsgID []byte, compose composer, standalone func() *content.Message) (SendResult, error) {
	if len(clientMsgID) > 64 {
		return SendResult{}, fmt.Errorf("%w: client message id longer than 64 bytes", ErrInvalidArgument)
	}
	cid := userClientID(clientMsgID)
	fresh := cid == nil
	if fresh {
		cid = make([]byte, 18)
		copy(cid, "m:")
		if _, err := rand.Read(cid[2:]); err != nil {
			return SendResult{}, opError("send", err)
		}
	}
	// The text is signed while its transaction begins and reads the group
	// (on the other core, when one is free): the send is queued first, and
	// its transaction waits for the signature only where it needs it.
	var (
		pre     *presigned
		signed  = make(chan struct{})
		signing func()
		waitPre func() *presigned
	)
	if standalone != nil {
		signing = func() {
			defer close(signed)
			pre = b.presign(group, standalone())
		}
		waitPre = func() *presigned { <-signed; return pre }
	}
	// The identity is read in the send's transaction: one statement there
	// instead of a view of its own before it.
	res, err := b.sendBatched(ctx, func(tx *store.Tx) (SendResult, error) {
		id, err := tx.Identity()
		if errors.Is(err, store.ErrNotFound) {
			return SendResult{}, ErrNotRegistered
		}
		if err != nil {
			return SendResult{}, err
		}
		return b.sendLocked(tx, id, group, cid, compose, fresh, waitPre)
	}, signing)
	if errors.Is(err, ErrNotRegistered) {
		return SendResult{}, ErrNotRegistered
	}
	if err != nil {
		return SendResult{}, opError("send", err)
	}
	return res, nil
}

// sendLocked is sendContent's transaction (sendbatch.go runs several in
// one): it answers a repeated client message id as the first time, or
// encrypts, records and queues what compose builds. A fresh cid, made
// just now from crypto/rand, cannot have been used: it is not looked up.
// The caller holds gmu.
func (b *Backend) sendLocked(tx *store.Tx, id store.Identity, group string, cid []byte, compose composer, fresh bool, waitPre func() *presigned) (SendResult, error) {
	var res SendResult
	err := func() error {
		if !fresh {
			if it, err := tx.OutboxByClientMsgID(cid); err == nil {
				// A repeated request: answer as the first time.
				if it.MessageSeq > 0 {
					if res.Message, err = tx.Message(it.GroupID, it.MessageSeq); err != nil {
						return err
					}
				}
				res.Delivered, res.OutboxID = it.State == store.OutboxSent, it.ID
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		ref, err := resolveGroup(tx, group)
		if err != nil {
			return err
		}
		// ref is the group's row, read in tx: decoded, not read again.
		sg := ref
		g, err := decodeGroup(tx, sg)
		if err != nil {
			return fmt.Errorf("decode state of group %x: %w", sg.ID, err)
		}
		if !sg.LeftAt.IsZero() || !g.Active() {
			return fmt.Errorf("%w: %s", ErrNotMember, sg.Name)
		}
		if g.HasPendingCommit() {
			return fmt.Errorf("%w: a commit of group %s waits for the node's verdict", ErrNotConnected, sg.Name)
		}
		var (
			m  *content.Message
			sc *mls.SignedContent
		)
		var pre *presigned
		if waitPre != nil {
			pre = waitPre()
		}
		if pre.usable(&sg) {
			m, sc = pre.m, pre.sc
		} else if m, err = compose(tx, sg); err != nil {
			return err
		}
		a, it, err := b.postSigned(tx, &sg, g, id.PublicKey(), m, cid, sc)
		if err != nil {
			return err
		}
		b.keepSigner(group, &sg, g)
		res = SendResult{Message: a.Message, OutboxID: it.ID, Delivered: it.State == store.OutboxSent}
		return nil
	}()
	return res, err
}

// setExpiry gives m the group's disappearing-message timer d, unless it
// has its own or is of a kind that does not disappear.
func setExpiry(m *content.Message, d time.Duration) {
	if k := m.Kind(); d > 0 && m.Expires == nil && k != content.KindTimer && k != content.KindReceipt {
		m.Expires = &content.Expiry{Relative: true, Seconds: uint32(d / time.Second)}
	}
}

// protectContent encrypts m to g: the content sc signed for g's current
// state (presigned), or else m signed now.
func protectContent(g *mls.Group, m *content.Message, sc *mls.SignedContent) (ct []byte, presigned bool, err error) {
	if sc != nil {
		ct, err := g.ProtectSigned(sc)
		if !errors.Is(err, mls.ErrStaleSignedContent) {
			if err != nil {
				return nil, false, fmt.Errorf("encrypt: %w", err)
			}
			return ct, true, nil
		}
	}
	pt, err := appendContent(m, g.EpochAuthenticator())
	if err != nil {
		return nil, false, err
	}
	ct, err = g.Protect(pt, nil)
	clear(pt)
	if err != nil {
		return nil, false, fmt.Errorf("encrypt: %w", err)
	}
	return ct, false, nil
}

// post encrypts m to the group, applies it to the own history and queues
// it for the other members, in tx; it saves the group. The caller holds
// gmu and checked that the user is an active member without a pending
// commit.
func (b *Backend) post(tx *store.Tx, sg *store.Group, g *mls.Group, self []byte, m *content.Message, cid []byte) (applied, store.OutboxItem, error) {
	return b.postSigned(tx, sg, g, self, m, cid, nil)
}

// postSigned is post of m as signed before the transaction (presign.go)
// in sc, or as post when sc is nil. Content signed for another state of
// the group is signed again.
func (b *Backend) postSigned(tx *store.Tx, sg *store.Group, g *mls.Group, self []byte, m *content.Message, cid []byte, sc *mls.SignedContent) (applied, store.OutboxItem, error) {
	if sc == nil {
		m.SentAt = tx.Now()
		setExpiry(m, sg.DisappearAfter)
	}
	ct, presigned, err := protectContent(g, m, sc)
	if err != nil {
		return applied{}, store.OutboxItem{}, err
	}
	if presigned {
		b.presignedSent.Add(1)
	}
	sender, dev := self, sendingDevice{key: self}
	if own, ok := g.Member(g.OwnLeaf()); ok {
		if u, d := senderOf(own); u != nil {
			sender, dev = u, d // shown under the person, on every device
		}
	}
	a, err := applyContent(tx, sg, m, messageID(ct), sender, dev, true, 0)
	if err != nil {
		return applied{}, store.OutboxItem{}, err
	}
	if err := saveGroup(tx, sg, g); err != nil {
		return applied{}, store.OutboxItem{}, err
	}
	// The node gives the message to every other member (it knows them
	// from the group's tree): no list of them, which would grow with the
	// group, is kept with it.
	others := g.MemberCount() > 1
	// The item names the history entry it sends (none for an edit or
	// delete: the entry it names is another message's).
	seq := a.Message.Seq
	if k := m.Kind(); k == content.KindEdit || k == content.KindDelete {
		seq = 0
	}
	it, err := tx.AddOutbox(store.OutboxItem{Kind: store.OutboxApplication, GroupID: sg.ID, ClientMsgID: cid, Payload: ct, FanOut: others, Epoch: g.Epoch(), MessageSeq: seq})
	if err != nil {
		return applied{}, store.OutboxItem{}, err
	}
	if !others {
		if err := tx.SetOutboxState(it.ID, store.OutboxSent, ""); err != nil {
			return applied{}, store.OutboxItem{}, err
		}
		it.State = store.OutboxSent
	}
	return a, it, nil
}
