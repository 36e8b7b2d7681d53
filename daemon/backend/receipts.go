package backend

import (
	"context"
	"crypto/rand"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// This file sends receipts (content.go): a delivery receipt as a message
// of another member is applied, in the same transaction, and a read
// receipt once messages are marked read (after that commit, best effort:
// a receipt lost to a crash in between is not sent again). Each is a
// content message to the whole group, so every member sees every
// member's state. Config.NoReceipts sends none (receipts of the others
// are still shown), and groups of more than maxReceiptMembers members
// have none.

// maxReceiptMembers: in larger groups no receipts are sent (each would go
// to every member, for every message and member: quadratic traffic).
const maxReceiptMembers = 32

// maxReceiptStatuses bounds the messages one receipt names (the content
// decoder's array bound is 256).
const maxReceiptStatuses = 200

// sendReceipt queues a receipt of ids with status to the group, in tx. The
// caller holds gmu, and the user is an active member.
func (b *Backend) sendReceipt(tx *store.Tx, sg *store.Group, g *mls.Group, self []byte, status content.Status, ids ...[]byte) error {
	if len(ids) == 0 || g.HasPendingCommit() || !b.receiptsIn(g, self) {
		return nil
	}
	r := content.Receipt{At: tx.Now()}
	for _, id := range ids {
		r.Statuses = append(r.Statuses, content.MessageStatus{ID: id, Status: status})
	}
	cid := make([]byte, 18)
	copy(cid, "r:")
	if _, err := rand.Read(cid[2:]); err != nil {
		return err
	}
	_, _, err := b.post(tx, sg, g, self, content.NewReceipt(r), cid)
	return err
}

// receiptsIn reports whether the user sends receipts in g: receipts are
// on, and g has other members, fewer than maxReceiptMembers.
func (b *Backend) receiptsIn(g *mls.Group, self []byte) bool {
	if b.cfg.NoReceipts || g.MemberCount() > maxReceiptMembers {
		return false // counted without copying a large group's members out
	}
	n := len(otherMembers(g, self))
	return n > 0 && n < maxReceiptMembers
}

// receivable reports whether members send receipts of m.
func receivable(m store.Message) bool {
	return !m.Outgoing && !m.Deleted && (m.Kind == store.KindText || m.Kind == store.KindReply || m.Kind == store.KindUnknown)
}

// sendReadReceipts sends read receipts of the messages just marked read.
func (b *Backend) sendReadReceipts(ctx context.Context, msgs []store.Message) {
	if b.cfg.NoReceipts {
		return
	}
	byGroup := map[string][][]byte{}
	var order []string
	for _, m := range msgs {
		if m.Read || !receivable(m) {
			continue
		}
		k := string(m.GroupID)
		if _, ok := byGroup[k]; !ok {
			order = append(order, k)
		}
		byGroup[k] = append(byGroup[k], m.MessageID)
	}
	if len(order) == 0 {
		return
	}
	id, err := b.identity(ctx)
	if err != nil {
		return
	}
	b.gmu.Lock()
	defer b.gmu.Unlock()
	for _, k := range order {
		ids := byGroup[k]
		err := b.update(ctx, func(tx *store.Tx) error {
			sg, g, err := loadGroup(tx, []byte(k))
			if err != nil || !sg.LeftAt.IsZero() || !g.Active() {
				return err
			}
			for len(ids) > 0 {
				n := min(len(ids), maxReceiptStatuses)
				if err := b.sendReceipt(tx, &sg, g, id.PublicKey(), content.StatusRead, ids[:n]...); err != nil {
					return err
				}
				ids = ids[n:]
			}
			return nil
		})
		if err != nil {
			b.log.Warn("read receipts", "group", FormatKey([]byte(k)), "err", err)
		}
	}
}
