package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// DeliveryState is where a sent message stands.
type DeliveryState int

// Delivery states.
const (
	DeliveryQueued    DeliveryState = iota + 1 // in the outbox; qpd keeps trying
	DeliveryDelivered                          // the node accepted it
	DeliveryRefused                            // the node refused it for good
)

// Delivery is what AwaitDelivery found.
type Delivery struct {
	State DeliveryState
	// Detail says why a message is queued or was refused.
	Detail string
	// UnreachableSince is set for a message queued while the node is not
	// connected: since when.
	UnreachableSince time.Time
	// GroupSeq is the delivered message's number in its group's order (0
	// while not delivered, or in a group of one, where the node numbers
	// nothing).
	GroupSeq uint64
}

// AwaitDelivery reports where the outbox item id stands. While the node is
// connected and the item still pending, it waits up to wait for the node's
// verdict; while the node is unreachable it answers at once, saying since
// when.
func (b *Backend) AwaitDelivery(ctx context.Context, id int64, wait time.Duration) (Delivery, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		changed := b.Changed()
		var it store.OutboxItem
		var groupSeq uint64
		if err := b.view(ctx, func(tx *store.Tx) error {
			var err error
			if it, err = tx.Outbox(id); err != nil || it.State != store.OutboxSent || it.MessageSeq == 0 {
				return err
			}
			m, err := tx.Message(it.GroupID, it.MessageSeq)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			groupSeq = m.GroupSeq
			return err
		}); err != nil {
			return Delivery{}, opError("delivery", err)
		}
		switch it.State {
		case store.OutboxSent:
			return Delivery{State: DeliveryDelivered, GroupSeq: groupSeq}, nil
		case store.OutboxDropped:
			return Delivery{State: DeliveryRefused, Detail: it.LastError}, nil
		}
		ci := b.Connection()
		if ci.State != StateConnected {
			d := Delivery{State: DeliveryQueued, UnreachableSince: ci.Since, Detail: fmt.Sprintf("node %s unreachable since %s", ci.Address, ci.Since.UTC().Format(time.RFC3339))}
			if ci.LastError != "" {
				d.Detail += ": " + ci.LastError
			}
			return d, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			d := Delivery{State: DeliveryQueued, Detail: "the node has not answered yet"}
			if it.LastError != "" {
				d.Detail = "the node refused it for now: " + it.LastError
			}
			return d, nil
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		}
	}
}
