package client

import (
	"context"
	"fmt"

	"capnproto.org/go/capnp/v3"

	"github.com/quicproquo/quicproquo/schemas/group"
)

// The bounds of one FanOutBatch: the node refuses a call with more items
// (ErrLimit) or, at its default message size limit, more bytes (ErrTooLarge).
const (
	MaxFanOutBatch      = 64
	MaxFanOutBatchBytes = 1 << 20
)

// GroupMessage is one message of a FanOutBatch, as FanOut takes it.
type GroupMessage struct {
	ClientMsgID []byte
	Message     []byte
}

// FanOutResult is the node's answer to one stored message of a batch.
type FanOutResult struct {
	GroupSeq  uint64
	Duplicate bool
}

// FanOutBatch gives the node msgs in order, stored in one transaction,
// each checked and stored as FanOut would. The first message the node
// refuses ends the batch: results answers the messages before it, which
// are stored (or were), refused is its error (a *NodeError, as FanOut's
// would be), and the messages after it were not tried. With nothing
// refused, refused is nil and results answers every message. err is a
// failure of the call as a whole, which stored nothing: a call the node
// refused (past its limits, rate limited), a lost connection, or
// ErrUnimplemented from a node without the method.
func (c *Client) FanOutBatch(ctx context.Context, msgs []GroupMessage) (results []FanOutResult, refused, err error) {
	const op = "fan out batch"
	fut, release := c.node.FanOutBatch(ctx, func(p group.GroupService_fanOutBatch_Params) error {
		list, err := p.NewItems(int32(len(msgs)))
		if err != nil {
			return err
		}
		for i, m := range msgs {
			if len(m.ClientMsgID) > 0 {
				if err := list.At(i).SetClientMsgId(m.ClientMsgID); err != nil {
					return err
				}
			}
			if err := list.At(i).SetMlsMessage(m.Message); err != nil {
				return err
			}
		}
		return nil
	})
	release, err = c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, nil, callError(op, err)
	}
	res, err := fut.Struct()
	if capnp.IsUnimplemented(err) {
		return nil, nil, fmt.Errorf("%s: %w: %w", op, ErrUnimplemented, err)
	}
	if err != nil {
		return nil, nil, callError(op, err)
	}
	rl, err := res.Results()
	if err != nil {
		return nil, nil, callError(op, err)
	}
	if rl.Len() > len(msgs) {
		return nil, nil, fmt.Errorf("%s: node answered %d results for %d messages", op, rl.Len(), len(msgs))
	}
	results = make([]FanOutResult, rl.Len())
	for i := range results {
		results[i] = FanOutResult{GroupSeq: rl.At(i).GroupSeq(), Duplicate: rl.At(i).Duplicate()}
	}
	text, err := res.Refusal()
	if err != nil {
		return nil, nil, callError(op, err)
	}
	switch {
	case text != "":
		ne, ok := parseNodeError(text)
		if !ok {
			return nil, nil, fmt.Errorf("%s: node sent a refusal without a code: %q", op, text)
		}
		if len(results) == len(msgs) {
			return nil, nil, fmt.Errorf("%s: node refused a message after answering all %d", op, len(msgs))
		}
		return results, fmt.Errorf("%s: message %d: %w", op, len(results), ne), nil
	case len(results) != len(msgs):
		return nil, nil, fmt.Errorf("%s: node answered %d of %d messages without a refusal", op, len(results), len(msgs))
	}
	return results, nil, nil
}
