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
// receipt are noted, and the batch's transaction records them as owed
// (store.OweReceipt, a small row each). The first owed receipt starts a
// wait of Config.ReceiptDelay; then one transaction sends each group one
// receipt naming every message owed in it and deletes the notes, instead
// of one receipt (an encryption, an outbox item, a fan-out at the node and
// a transaction at every other member) per message or per pushed batch.
// So the receiving transaction, which makes the message visible, does no
// encryption for the receipt, and messages that arrive one after the
// other share one. A message whose envelope was rolled back (its savepoint
// failed) is not named; the receipt of a group whose commit waits for the
// node's verdict waits for it. The notes are durable with the messages: a
// receipt still owed when qpd stops or is killed goes out after it starts
// again (Run sends what is owed first, and stopping leaves it noted).

// defaultReceiptDelay is Config.ReceiptDelay's default, the ack interval.
const defaultReceiptDelay = ackInterval

// receiptRetryDelay is how long the receipts of a group whose commit waits
// for the node's verdict wait again (the commit's epoch decides the
// receipt's).
const receiptRetryDelay = time.Second

// owedPage is how many owed receipts one sending transaction takes.
const owedPage = 1024

// owedReceipts is the wait for the owed receipts (the notes are in the store).
type owedReceipts struct {
	mu      sync.Mutex
	timer   *time.Timer // while a send is scheduled
	stopped bool        // stopReceipts runs: nothing more is scheduled
	// sending counts the scheduled and running sends (stopReceipts waits).
	sending sync.WaitGroup
}

// oweReceipts notes ps as owed in tx, the transaction that stores their
// messages; a note past store.MaxOwedReceipts is logged and not kept.
func (b *Backend) oweReceipts(tx *store.Tx, ps []pendingReceipt) error {
	dropped := 0
	for _, p := range ps {
		ok, err := tx.OweReceipt(p.group, p.id)
		if err != nil {
			return err
		}
		if !ok {
			dropped++
		}
	}
	if dropped > 0 {
		b.log.Warn("delivery receipts not sent: too many owed", "messages", dropped)
	}
	return nil
}

// scheduleReceipts sends the owed receipts after delay, unless a send is
// scheduled already.
func (b *Backend) scheduleReceipts(delay time.Duration) {
	o := &b.owed
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped || o.timer != nil {
		return
	}
	o.sending.Add(1)
	o.timer = time.AfterFunc(delay, func() {
		defer o.sending.Done()
		o.mu.Lock()
		o.timer = nil
		o.mu.Unlock()
		b.sendOwedReceipts()
	})
}

// sendOwedReceipts sends the receipts owed, one per group, a page per
// transaction, and deletes their notes in it; those of a group whose
// commit waits for the node's verdict are noted again and retried later.
func (b *Backend) sendOwedReceipts() {
	retry := false
	for {
		n := 0
		b.gmu.Lock()
		err := b.update(context.Background(), func(tx *store.Tx) error {
			rows, err := tx.OwedReceipts(owedPage)
			if err != nil {
				return err
			}
			n = len(rows)
			if n == 0 {
				return nil
			}
			ps := make([]pendingReceipt, len(rows))
			for i, r := range rows {
				ps[i] = pendingReceipt{group: r.GroupID, id: r.MessageID}
			}
			if err := tx.DeleteOwedReceipts(rows[n-1].ID); err != nil {
				return err
			}
			later, err := b.sendBatchReceipts(tx, ps)
			if err != nil {
				return err
			}
			if len(later) > 0 {
				retry = true
				// Noted again, after the page: the next page is what
				// was owed after it.
				n -= len(later)
				return b.oweReceipts(tx, later)
			}
			return nil
		})
		b.gmu.Unlock()
		if err != nil {
			b.log.Warn("delivery receipts not sent", "err", err)
			retry = true
			break
		}
		if n < owedPage {
			break
		}
	}
	if retry {
		b.scheduleReceipts(receiptRetryDelay)
	}
}

// stopReceipts ends the wait and waits for a send under way: Run calls
// it before it returns, while the store is open. What is still owed stays
// noted and goes out after the next start, as after a crash (sending it
// now would only put it in the outbox, which waits for the next start too).
func (b *Backend) stopReceipts() {
	o := &b.owed
	o.mu.Lock()
	o.stopped = true
	if o.timer != nil && o.timer.Stop() {
		o.timer = nil
		o.sending.Done()
	}
	o.mu.Unlock()
	o.sending.Wait()
	o.mu.Lock()
	o.stopped = false
	o.mu.Unlock()
}

// pendingReceipt is a delivery receipt noted during a batch.
type pendingReceipt struct{ group, id []byte }

// deliveryReceipt sends a delivery receipt of id in sg's group: now, or
// owed with the batch's when a batch is being applied. The caller holds
// gmu. Where no receipt would be sent (receipts off, a group too large)
// none is noted: noting it would cost a row now and a transaction later.
func (b *Backend) deliveryReceipt(tx *store.Tx, sg *store.Group, g *mls.Group, self, id []byte) error {
	if !b.receiptsIn(g, self) {
		return nil
	}
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
