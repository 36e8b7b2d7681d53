package backend

import (
	"bytes"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// Delivery receipts of a pushed batch go out together: while
// applyEnvelopes applies a batch, the messages that call for a delivery
// receipt are noted, and at the end of the batch's transaction each group
// gets one receipt naming all of its messages, instead of one receipt (an
// encryption, an outbox item, a fan-out at the node and a transaction at
// every other member) per message. The receipt is still written in the
// transaction that stores the messages; a message whose envelope is
// rolled back (its savepoint failed) is not named.

// pendingReceipt is a delivery receipt noted during a batch.
type pendingReceipt struct{ group, id []byte }

// deliveryReceipt sends a delivery receipt of id in sg's group: now, or
// with the batch's when a batch is being applied. The caller holds gmu.
func (b *Backend) deliveryReceipt(tx *store.Tx, sg *store.Group, g *mls.Group, self, id []byte) error {
	if b.receiptBatch != nil {
		*b.receiptBatch = append(*b.receiptBatch, pendingReceipt{group: sg.ID, id: id})
		return nil
	}
	return b.sendReceipt(tx, sg, g, self, content.StatusDelivered, id)
}

// sendBatchReceipts sends the receipts noted in pending, one per group,
// in tx. A group that fails to take its receipt (a savepoint of its own)
// is logged and sends none: receipts do not hold the messages back.
func (b *Backend) sendBatchReceipts(tx *store.Tx, pending []pendingReceipt) error {
	if len(pending) == 0 {
		return nil
	}
	self, err := tx.Identity()
	if err != nil {
		return err
	}
	done := make([]bool, len(pending))
	for i, p := range pending {
		if done[i] {
			continue
		}
		var ids [][]byte
		for j := i; j < len(pending); j++ {
			if !done[j] && bytes.Equal(pending[j].group, p.group) {
				ids = append(ids, pending[j].id)
				done[j] = true
			}
		}
		for len(ids) > 0 {
			n := min(len(ids), maxReceiptStatuses)
			err := tx.Savepoint(func(tx *store.Tx) error {
				sg, g, err := loadGroup(tx, p.group)
				if err != nil {
					return err
				}
				if !sg.LeftAt.IsZero() || !g.Active() {
					return nil
				}
				// (sendReceipt saves the group: the sender ratchet moved.)
				return b.sendReceipt(tx, &sg, g, self.PublicKey(), content.StatusDelivered, ids[:n]...)
			})
			if err != nil {
				// (Had the savepoint itself failed, the transaction
				// would not commit: the batch comes again.)
				b.log.Warn("delivery receipts not sent", "group", FormatKey(p.group), "err", err)
			}
			ids = ids[n:]
		}
	}
	return nil
}
