package server

import (
	"context"
	"errors"
	"fmt"

	"capnproto.org/go/capnp/v3"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/schemas/group"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// noRecipients refuses a declared recipient list: the node derives every
// group message's recipients from the group's tree.
func noRecipients(method, what string, list capnp.DataList) error {
	if list.Len() > 0 {
		return fail(nodecp.ErrorCode_invalidArgument, "%s: %s must be empty: the node derives them from the group's tree", method, what)
	}
	return nil
}

// checkGroupMessage checks a group message's size and client message id and
// parses its header; allowed says which content types the method takes.
func (s *session) checkGroupMessage(method string, msg, msgID []byte, allowed ...uint8) (mlsHeader, error) {
	if len(msg) > s.srv.cfg.MaxPayloadSize {
		return mlsHeader{}, fail(nodecp.ErrorCode_tooLarge, "%s: message has %d bytes, limit %d", method, len(msg), s.srv.cfg.MaxPayloadSize)
	}
	if len(msgID) > maxClientMsgIDSize {
		return mlsHeader{}, fail(nodecp.ErrorCode_invalidArgument, "%s: clientMsgId has %d bytes, limit %d", method, len(msgID), maxClientMsgIDSize)
	}
	h, err := parseMLSHeader(msg)
	if err != nil {
		return mlsHeader{}, fail(nodecp.ErrorCode_invalidArgument, "%s: %v", method, err)
	}
	if len(h.groupID) > store.MaxGroupIDSize {
		return mlsHeader{}, fail(nodecp.ErrorCode_invalidArgument, "%s: group_id has %d bytes, limit %d", method, len(h.groupID), store.MaxGroupIDSize)
	}
	for _, ct := range allowed {
		if h.contentType == ct {
			return h, nil
		}
	}
	return mlsHeader{}, fail(nodecp.ErrorCode_invalidArgument, "%s: MLSMessage carries %s content", method, contentTypeName(h.contentType))
}

// groupStoreError maps the group-specific store errors (and the refusals of
// the view's checks, which the store returns as they are), then the rest.
func (s *session) groupStoreError(method string, err error) error {
	var ce *callError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, store.ErrNotMember):
		return fail(nodecp.ErrorCode_unauthorized, "%s: %x is not a member of the group", method, s.identity)
	case errors.Is(err, store.ErrGroupExists):
		return fail(nodecp.ErrorCode_groupExists, "%s: the group id is taken", method)
	}
	return s.storeError(method, err)
}

func (s *session) CreateGroup(ctx context.Context, call group.GroupService_createGroup) error {
	const method = "createGroup"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		gi, _ := call.Args().GroupInfo()
		if len(gi) > s.srv.cfg.MaxPayloadSize {
			return fail(nodecp.ErrorCode_tooLarge, "%s: groupInfo has %d bytes, limit %d", method, len(gi), s.srv.cfg.MaxPayloadSize)
		}
		if err := s.admitGroup(ctx, method, len(gi)); err != nil {
			return err
		}
		pg, view, roster, err := newGroupView(method, s.leafRule(ctx), s.identity, gi)
		if err != nil {
			return err
		}
		if len(pg.GroupID()) > store.MaxGroupIDSize {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: group_id has %d bytes, limit %d", method, len(pg.GroupID()), store.MaxGroupIDSize)
		}
		if len(roster) > s.srv.cfg.MaxRecipients {
			return fail(nodecp.ErrorCode_limit, "%s: %d members, limit %d", method, len(roster), s.srv.cfg.MaxRecipients)
		}
		if err := s.srv.cfg.Store.CreateGroup(ctx, pg.GroupID(), s.identity, pg.Epoch(), view, roster); err != nil {
			return s.groupStoreError(method, err)
		}
		return nil
	})
}

func (s *session) SubmitCommit(ctx context.Context, call group.GroupService_submitCommit) error {
	const method = "submitCommit"
	return s.serveOutcome(method, func() (string, error) {
		var outcome string
		err := s.submitCommit(ctx, call, &outcome)
		return outcome, err
	})
}

// submitCommit serves SubmitCommit; a stale commit sets *outcome.
func (s *session) submitCommit(ctx context.Context, call group.GroupService_submitCommit, outcome *string) error {
	const method = "submitCommit"
	if err := s.authenticated(method); err != nil {
		return err
	}
	args := call.Args()
	msg, _ := args.MlsMessage()
	msgID, _ := args.ClientMsgId()
	h, err := s.checkGroupMessage(method, msg, msgID, contentTypeCommit)
	if err != nil {
		return err
	}
	if h.wireFormat != wireFormatPublicMessage {
		return fail(nodecp.ErrorCode_invalidCommit, "%s: a commit must be a PublicMessage", method)
	}
	rl, _ := args.Recipients()
	wl, _ := args.WelcomeRecipients()
	if err := errors.Join(noRecipients(method, "recipients", rl), noRecipients(method, "welcomeRecipients", wl)); err != nil {
		return err
	}
	welcome, _ := args.Welcome()
	if len(welcome) > s.srv.cfg.MaxPayloadSize {
		return fail(nodecp.ErrorCode_tooLarge, "%s: welcome has %d bytes, limit %d", method, len(welcome), s.srv.cfg.MaxPayloadSize)
	}
	if len(welcome) > 0 {
		if err := checkWelcomeHeader(welcome); err != nil {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: %v", method, err)
		}
	}
	if err := s.admitGroup(ctx, method, len(msg)+len(welcome)); err != nil {
		return err
	}
	var verdict store.CommitVerdict
	var rule *txRule
	check := func(cur store.GroupView) (store.CommitVerdict, error) {
		v, err := commitVerdict(method, rule, s.identity, msg, welcome, cur)
		if err == nil {
			err = rule.pending()
		}
		if err == nil && len(v.Recipients)+len(v.WelcomeRecipients) > s.srv.cfg.MaxRecipients {
			err = fail(nodecp.ErrorCode_limit, "%s: %d recipients and welcome recipients, limit %d",
				method, len(v.Recipients)+len(v.WelcomeRecipients), s.srv.cfg.MaxRecipients)
		}
		verdict = v
		return v, err
	}
	var res store.CommitResult
	err = s.inTxRule(ctx, method, func(r *txRule) (err error) {
		rule = r
		res, err = s.srv.cfg.Store.SubmitCommit(ctx, h.groupID, h.epoch, s.identity, msgID, msg, welcome, check)
		return err
	})
	var stale *store.StaleEpochError
	if errors.As(err, &stale) && stale.Epoch > stale.Current {
		return fail(nodecp.ErrorCode_futureEpoch, "%s: commit for epoch %d, group is at epoch %d", method, stale.Epoch, stale.Current)
	}
	if errors.As(err, &stale) {
		out, aerr := call.AllocResults()
		if aerr != nil {
			return aerr
		}
		o, aerr := out.NewOutcome()
		if aerr != nil {
			return aerr
		}
		o.SetStale()
		o.Stale().SetEpoch(stale.Epoch)
		o.Stale().SetCurrent(stale.Current)
		s.log.Debug("stale commit", "group", fmt.Sprintf("%x", h.groupID), "epoch", stale.Epoch, "current", stale.Current)
		*outcome = nodecp.ErrorCode_staleEpoch.String()
		return nil
	}
	if err != nil {
		return s.groupStoreError(method, err)
	}
	if !res.Duplicate {
		s.srv.cfg.Metrics.enqueued(len(msg)*len(verdict.Recipients) + len(welcome)*len(verdict.WelcomeRecipients))
		for _, r := range verdict.Recipients {
			s.srv.notifier.notify(r)
		}
		for _, r := range verdict.WelcomeRecipients {
			s.srv.notifier.notify(r)
		}
	}
	out, err := call.AllocResults()
	if err != nil {
		return err
	}
	o, err := out.NewOutcome()
	if err != nil {
		return err
	}
	o.SetAccepted()
	o.Accepted().SetEpoch(res.Epoch + 1)
	o.Accepted().SetGroupSeq(res.GroupSeq)
	o.Accepted().SetDuplicate(res.Duplicate)
	return nil
}

func (s *session) FanOut(ctx context.Context, call group.GroupService_fanOut) error {
	const method = "fanOut"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		args := call.Args()
		msg, _ := args.MlsMessage()
		msgID, _ := args.ClientMsgId()
		var rule *txRule
		it, err := s.fanOutItem(method, msg, msgID, &rule)
		if err != nil {
			return err
		}
		rl, _ := args.Recipients()
		if err := noRecipients(method, "recipients", rl); err != nil {
			return err
		}
		if err := s.admitGroup(ctx, method, len(msg)); err != nil {
			return err
		}
		var res store.FanOutResult
		err = s.inTxRule(ctx, method, func(r *txRule) (err error) {
			rule = r
			res, err = s.srv.cfg.Store.FanOut(ctx, it.GroupID, s.identity, msgID, msg, it.Update)
			return err
		})
		if err != nil {
			return s.groupStoreError(method, err)
		}
		s.fannedOut(len(msg), res)
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		out.SetGroupSeq(res.GroupSeq)
		out.SetDuplicate(res.Duplicate)
		return nil
	})
}

// fanOutItem checks a group message as fanOut and fanOutBatch take it: an
// application message, or a proposal (a PublicMessage) whose view update
// judges with *rule, the rule of the store call's attempt.
func (s *session) fanOutItem(method string, msg, msgID []byte, rule **txRule) (store.FanOutItem, error) {
	h, err := s.checkGroupMessage(method, msg, msgID, contentTypeApplication, contentTypeProposal)
	if err != nil {
		return store.FanOutItem{}, err
	}
	it := store.FanOutItem{GroupID: h.groupID, ClientMsgID: msgID, Payload: msg}
	switch {
	case h.contentType == contentTypeProposal && h.wireFormat != wireFormatPublicMessage:
		return store.FanOutItem{}, fail(nodecp.ErrorCode_invalidCommit, "%s: a proposal must be a PublicMessage", method)
	case h.contentType == contentTypeProposal:
		it.Update = func(cur store.GroupView) ([]byte, error) {
			v, err := proposalUpdate(method, *rule, s.identity, msg, cur)
			if err == nil {
				err = (*rule).pending()
			}
			return v, err
		}
	}
	return it, nil
}

// fannedOut counts a stored group message of size bytes and wakes its
// recipients; a duplicate stored nothing.
func (s *session) fannedOut(size int, res store.FanOutResult) {
	if res.Duplicate {
		return
	}
	s.srv.cfg.Metrics.enqueued(size * len(res.Recipients))
	for _, r := range res.Recipients {
		s.srv.notifier.notify(r)
	}
}

func (s *session) GroupState(ctx context.Context, call group.GroupService_groupState) error {
	const method = "groupState"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		id, _ := call.Args().GroupId()
		if len(id) == 0 || len(id) > store.MaxGroupIDSize {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: groupId has %d bytes, want 1 to %d", method, len(id), store.MaxGroupIDSize)
		}
		gs, err := s.srv.cfg.Store.GroupState(ctx, id, s.identity)
		if err != nil {
			return s.groupStoreError(method, err)
		}
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		out.SetCommitted(true)
		out.SetEpoch(gs.Epoch)
		out.SetLastSeq(gs.LastSeq)
		out.SetMembers(uint32(gs.Members))
		return nil
	})
}
