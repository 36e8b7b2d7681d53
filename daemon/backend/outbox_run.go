package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// The outbox sender gives the node a group's consecutive pending messages
// in one fanOutBatch call (one node transaction for all of them) rather
// than one fanOut each. The node stores a batch in order and stops at the
// first message it refuses, so the group's order, and what happens to a
// refused message and those after it, is that of one call per message.

// fannedOut reports whether it goes to the node as a group message (see
// deliver): those are what a batch holds.
func fannedOut(it store.OutboxItem) bool {
	return len(it.GroupID) > 0 && (it.FanOut || len(it.Recipients) > 0)
}

// outboxRun returns the items to give the node at once from pending, whose
// first item is due: that item, and when it is a group message the pending
// items of its group right after it that are due too, within the bounds
// of one batch. single means the node takes one message per call.
func outboxRun(pending []store.OutboxItem, handed bool, lastID int64, marks *outboxMarks, single bool) []store.OutboxItem {
	first := pending[0]
	if single || !fannedOut(first) {
		return pending[:1]
	}
	size := len(first.Payload) + len(outboxClientID(first))
	n := 1
	for ; n < len(pending) && n < nodeclient.MaxFanOutBatch; n++ {
		it := pending[n]
		if !fannedOut(it) || !bytes.Equal(it.GroupID, first.GroupID) || (handed && it.ID <= lastID) || marks.sent(it.ID) {
			break
		}
		if size += len(it.Payload) + len(outboxClientID(it)); size > nodeclient.MaxFanOutBatchBytes {
			break
		}
	}
	return pending[:n]
}

// deliverRun gives run (see outboxRun) to the node and returns the numbers
// the node gave the items it took, in order; a non-nil error is that of
// run[len(seqs)], which the node refused (the items after it were not
// tried). A node without fanOutBatch sets *single and gets one call per
// item from then on.
func (b *Backend) deliverRun(ctx context.Context, c *nodeclient.Client, run []store.OutboxItem, single *bool) ([]uint64, error) {
	if len(run) > 1 {
		msgs := make([]nodeclient.GroupMessage, len(run))
		for k, it := range run {
			msgs[k] = nodeclient.GroupMessage{ClientMsgID: outboxClientID(it), Message: it.Payload}
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, refused, err := c.FanOutBatch(fctx, msgs)
		cancel()
		switch {
		case errors.Is(err, nodeclient.ErrUnimplemented):
			b.log.Info("the node has no batched fan-out; one call per message", "err", err)
			*single = true
		case errors.Is(err, nodeclient.ErrLimit), errors.Is(err, nodeclient.ErrTooLarge):
			// The node's bounds of a batch are below ours: this run one
			// item at a time.
			b.log.Debug("batch refused whole; one call per message", "items", len(run), "err", err)
		case err != nil:
			return nil, fmt.Errorf("fan out outbox item %d: %w", run[0].ID, err)
		default:
			seqs := make([]uint64, len(res))
			for k, r := range res {
				seqs[k] = r.GroupSeq
			}
			if refused != nil {
				return seqs, fmt.Errorf("fan out outbox item %d: %w", run[len(seqs)].ID, refused)
			}
			return seqs, nil
		}
	}
	var seqs []uint64
	for _, it := range run {
		seq, err := b.deliver(ctx, c, it)
		if err != nil {
			return seqs, err
		}
		seqs = append(seqs, seq)
	}
	return seqs, nil
}
