package backend

import (
	"context"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// Delivery receipts go out after the messages they name, together: while
// applyEnvelopes applies a batch, the messages that call for a delivery
// receipt are noted, and once the batch's transaction has committed they
// are owed. The first owed receipt starts a wait of Config.ReceiptDelay;
// then one transaction sends each group one receipt naming every message
// owed in it, instead of one receipt (an encryption, an outbox item, a
// fan-out at the node and a transaction at every other member) per
// message or per pushed batch. So the receiving transaction, which makes
// the message visible, does no encryption for the receipt, and messages
// that arrive one after the other share one. A message whose envelope was
// rolled back (its savepoint failed) is not named; the receipt of a group
// whose commit waits for the node's verdict waits for it. Like read receipts
// (receipts.go), an owed receipt is best effort: one lost to a crash in
// the wait is not sent again, and the message stays shown as sent at its
// sender. What the receipt's encryption writes (the sender ratchet) is
// committed durably before the receipt goes out.

// defaultReceiptDelay is Config.ReceiptDelay's default, the ack interval.
const defaultReceiptDelay = ackInterval

// receiptRetryDelay is how long the receipts of a group whose commit waits
// for the node's verdict wait again (the commit's epoch decides the
// receipt's).
const receiptRetryDelay = time.Second

// maxOwedReceipts bounds the messages owed a receipt; past it, receipts
// are not sent (and logged).
const maxOwedReceipts = 4096

// owedReceipts holds the delivery receipts owed and the wait for them.
type owedReceipts struct {
	mu      sync.Mutex
	pending []pendingReceipt
	timer   *time.Timer // while a send is scheduled
	stopped bool        // stopReceipts runs: nothing more is scheduled
	// sending counts the scheduled and running sends (stopReceipts waits).
	sending sync.WaitGroup
}

// oweReceipts queues ps, noted in a committed transaction, and schedules
// their send after delay.
func (b *Backend) oweReceipts(ps []pendingReceipt, delay time.Duration) {
	if len(ps) == 0 {
		return
	}
	o := &b.owed
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		b.log.Warn("delivery receipts not sent: stopping", "messages", len(ps))
		return
	}
	if n := maxOwedReceipts - len(o.pending); len(ps) > n {
		b.log.Warn("delivery receipts not sent: too many owed", "messages", len(ps)-max(n, 0))
		ps = ps[:max(n, 0)]
	}
	o.pending = append(o.pending, ps...)
	if o.timer == nil {
		o.sending.Add(1)
		o.timer = time.AfterFunc(delay, func() {
			defer o.sending.Done()
			b.sendOwedReceipts()
		})
	}
}

// sendOwedReceipts sends the receipts owed, one per group, in one
// transaction; those of a group whose commit waits for the node's verdict
// are owed again.
func (b *Backend) sendOwedReceipts() {
	o := &b.owed
	o.mu.Lock()
	ps := o.pending
	o.pending, o.timer = nil, nil
	o.mu.Unlock()
	if len(ps) == 0 {
		return
	}
	b.gmu.Lock()
	var later []pendingReceipt
	err := b.update(context.Background(), func(tx *store.Tx) (err error) {
		later, err = b.sendBatchReceipts(tx, ps)
		return err
	})
	b.gmu.Unlock()
	if err != nil {
		b.log.Warn("delivery receipts not sent", "messages", len(ps), "err", err)
		return
	}
	b.oweReceipts(later, receiptRetryDelay)
}

// stopReceipts sends the receipts still owed at once and waits for any
// send under way: Run calls it before it returns, while the store is open.
// What is owed again then (a commit waits) is not sent.
func (b *Backend) stopReceipts() {
	o := &b.owed
	o.mu.Lock()
	o.stopped = true
	if o.timer != nil && o.timer.Stop() {
		o.timer = nil
		o.sending.Done()
	}
	o.mu.Unlock()
	b.sendOwedReceipts()
	o.sending.Wait()
	o.mu.Lock()
	o.stopped = false
	o.mu.Unlock()
}

// pendingReceipt is a delivery receipt noted during a batch.
type pendingReceipt struct{ group, id []byte }

// deliveryReceipt sends a delivery receipt of id in sg's group: now, or
// owed with the batch's when a batch is being applied. The caller holds
// gmu.
func (b *Backend) deliveryReceipt(tx *store.Tx, sg *store.Group, g *mls.Group, self, id []byte) error {
	if b.receiptBatch != nil {
		*b.receiptBatch = append(*b.receiptBatch, pendingReceipt{group: sg.ID, id: id})
		return nil
	}
	return b.sendReceipt(tx, sg, g, self, content.StatusDelivered, id)
}

// sendBatchReceipts sends the receipts of pending, one per group (up to
// maxReceiptStatuses messages each), in tx, and returns those of the
// groups whose commit waits for the node's verdict (to be sent later, in
// the epoch that follows). A group that fails to take its receipt (a
// savepoint of its own) is logged and sends none: receipts do not hold
// the messages back.
func (b *Backend) sendBatchReceipts(tx *store.Tx, pending []pendingReceipt) (later []pendingReceipt, err error) {
	if len(pending) == 0 {
		return nil, nil
	}
	self, err := tx.Identity()
	if err != nil {
		return nil, err
	}
	// The messages of each group, the groups in the order first noted.
	byGroup := map[string][][]byte{}
	var order [][]byte
	for _, p := range pending {
		k := string(p.group)
		if _, ok := byGroup[k]; !ok {
			order = append(order, p.group)
		}
		byGroup[k] = append(byGroup[k], p.id)
	}
	for _, group := range order {
		ids := byGroup[string(group)]
		for len(ids) > 0 {
			n := min(len(ids), maxReceiptStatuses)
			err := tx.Savepoint(func(tx *store.Tx) error {
				sg, g, err := loadGroup(tx, group)
				if err != nil {
					return err
				}
				if !sg.LeftAt.IsZero() || !g.Active() {
					return nil
				}
				if g.HasPendingCommit() {
					for _, id := range ids[:n] {
						later = append(later, pendingReceipt{group: group, id: id})
					}
					return nil
				}
				// (sendReceipt saves the group: the sender ratchet moved.)
				return b.sendReceipt(tx, &sg, g, self.PublicKey(), content.StatusDelivered, ids[:n]...)
			})
			if err != nil {
				// (Had the savepoint itself failed, the transaction
				// would not commit: these receipts are lost.)
				b.log.Warn("delivery receipts not sent", "group", FormatKey(group), "err", err)
			}
			ids = ids[n:]
		}
	}
	return later, nil
}
