package client

import (
	"context"
	"fmt"

	"capnproto.org/go/capnp/v3"

	"github.com/quicproquo/quicproquo/schemas/group"
)

// CommitRequest is a commit to submit with SubmitCommit. The node derives
// who receives the commit and the Welcome from the group's tree.
type CommitRequest struct {
	ClientMsgID []byte // idempotency key chosen by the sender (<= 64 bytes)
	Message     []byte // MLSMessage carrying a PublicMessage whose content is a Commit
	Welcome     []byte // MLSMessage carrying the Welcome, when the commit adds members
}

// CommitResult is the node's answer to an accepted commit.
type CommitResult struct {
	Epoch     uint64 // the group's epoch after this commit
	GroupSeq  uint64 // the commit's per-group sequence number
	Duplicate bool   // a resubmission of an accepted commit: nothing was stored this time
}

// GroupState is what the node knows of a group.
type GroupState struct {
	Epoch   uint64 // the epoch the next commit must name
	LastSeq uint64 // the last per-group sequence number handed out (0: none)
	Members int    // the size of the group's roster
}

// StaleEpochError is SubmitCommit's answer to a commit for an epoch other
// than the group's current one. errors.Is(err, ErrStaleEpoch) matches it.
type StaleEpochError struct {
	Epoch   uint64 // the epoch the refused commit named
	Current uint64 // the group's current epoch: the only one a commit may name now
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("stale epoch: commit for epoch %d, group is at epoch %d", e.Epoch, e.Current)
}

// Is makes errors.Is(err, ErrStaleEpoch) true.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// setDataList fills a new list of Data with items (the tests use it to play
// a client that declares recipients).
func setDataList(items [][]byte, alloc func(int32) (capnp.DataList, error)) error {
	if len(items) == 0 {
		return nil
	}
	list, err := alloc(int32(len(items)))
	if err != nil {
		return err
	}
	for i, b := range items {
		if err := list.Set(i, b); err != nil {
			return err
		}
	}
	return nil
}

// SubmitCommit asks the node to accept a commit. The node reads the group id
// and epoch from req.Message's header, checks the commit against the
// group's public state and accepts exactly one commit per (group, epoch):
// the accepted commit goes, in one transaction, to every other member and
// every member it removes, and the Welcome to every member it adds, as
// envelopes whose sender is this client's identity. A commit for an earlier
// epoch fails with a *StaleEpochError (match with errors.Is(err,
// ErrStaleEpoch), read Current with errors.As): the winning commit is in
// this client's queue. A resubmission with the same ClientMsgID (after a
// lost reply, say) returns the original result with Duplicate set. A
// sender outside the group gets ErrUnauthorized; a commit the public state
// refuses ErrInvalidCommit; one for a later epoch ErrFutureEpoch; too many
// recipients ErrLimit; a message that is not a commit ErrInvalidArgument.
func (c *Client) SubmitCommit(ctx context.Context, req CommitRequest) (CommitResult, error) {
	const op = "submit commit"
	fut, release := c.node.SubmitCommit(ctx, func(p group.GroupService_submitCommit_Params) error {
		if len(req.ClientMsgID) > 0 {
			if err := p.SetClientMsgId(req.ClientMsgID); err != nil {
				return err
			}
		}
		if err := p.SetMlsMessage(req.Message); err != nil {
			return err
		}
		if len(req.Welcome) > 0 {
			return p.SetWelcome(req.Welcome)
		}
		return nil
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return CommitResult{}, callError(op, err)
	}
	res, err := fut.Struct()
	if err != nil {
		return CommitResult{}, callError(op, err)
	}
	o, err := res.Outcome()
	if err != nil {
		return CommitResult{}, callError(op, err)
	}
	switch o.Which() {
	case group.CommitOutcome_Which_accepted:
		a := o.Accepted()
		return CommitResult{Epoch: a.Epoch(), GroupSeq: a.GroupSeq(), Duplicate: a.Duplicate()}, nil
	case group.CommitOutcome_Which_stale:
		s := o.Stale()
		return CommitResult{}, fmt.Errorf("%s: %w", op, &StaleEpochError{Epoch: s.Epoch(), Current: s.Current()})
	default:
		return CommitResult{}, fmt.Errorf("%s: node sent an unknown outcome %d", op, o.Which())
	}
}

// FanOut delivers a group message to the queue of every other member of
// the group in one transaction and returns its per-group sequence number.
// message is an MLSMessage: a PrivateMessage with application content or a
// PublicMessage with a proposal (which the node checks); the node reads its
// group id from the header. A non-empty clientMsgID makes the call
// idempotent: a repeat returns the original groupSeq and duplicate = true.
// A sender outside the group gets ErrUnauthorized.
func (c *Client) FanOut(ctx context.Context, clientMsgID, message []byte) (groupSeq uint64, duplicate bool, err error) {
	fut, release := c.node.FanOut(ctx, func(p group.GroupService_fanOut_Params) error {
		if len(clientMsgID) > 0 {
			if err := p.SetClientMsgId(clientMsgID); err != nil {
				return err
			}
		}
		return p.SetMlsMessage(message)
	})
	release, err = c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return 0, false, callError("fan out", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return 0, false, callError("fan out", err)
	}
	return res.GroupSeq(), res.Duplicate(), nil
}

// GroupState reports what the node knows of groupID. Only members may ask:
// anyone else, and anyone naming a group never created, gets
// ErrUnauthorized.
func (c *Client) GroupState(ctx context.Context, groupID []byte) (GroupState, error) {
	fut, release := c.node.GroupState(ctx, func(p group.GroupService_groupState_Params) error {
		return p.SetGroupId(groupID)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return GroupState{}, callError("group state", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return GroupState{}, callError("group state", err)
	}
	return GroupState{Epoch: res.Epoch(), LastSeq: res.LastSeq(), Members: int(res.Members())}, nil
}

// CreateGroup claims a group id at the node with the group's first
// GroupInfo (an MLSMessage with the ratchet_tree extension, signed by this
// client's leaf). The node keeps the group's public state from then on. A
// group id claimed before fails with ErrGroupExists.
func (c *Client) CreateGroup(ctx context.Context, groupInfo []byte) error {
	fut, release := c.node.CreateGroup(ctx, func(p group.GroupService_createGroup_Params) error {
		return p.SetGroupInfo(groupInfo)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return callError("create group", err)
	}
	_, err = fut.Struct()
	return callError("create group", err)
}
