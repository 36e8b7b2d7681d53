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

// recipientList copies and checks a list of recipient identity keys: at
// most MaxRecipients of them, each 32 bytes, none twice.
func (s *session) recipientList(method, what string, list capnp.DataList) ([][]byte, error) {
	n := list.Len()
	if n > s.srv.cfg.MaxRecipients {
		return nil, fail(nodecp.ErrorCode_limit, "%s: %d %s, limit %d", method, n, what, s.srv.cfg.MaxRecipients)
	}
	out := make([][]byte, n)
	seen := make(map[[store.IdentityKeySize]byte]struct{}, n)
	for i := range out {
		k, err := list.At(i)
		if err != nil {
			return nil, fail(nodecp.ErrorCode_invalidArgument, "%s: %s[%d]: %v", method, what, i, err)
		}
		if err := checkKey(method, fmt.Sprintf("%s[%d]", what, i), k); err != nil {
			return nil, err
		}
		key := [store.IdentityKeySize]byte(k)
		if _, dup := seen[key]; dup {
			return nil, fail(nodecp.ErrorCode_invalidArgument, "%s: %s lists %x twice", method, what, k)
		}
		seen[key] = struct{}{}
		out[i] = key[:]
	}
	return out, nil
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

// groupStoreError maps the group-specific store errors, then the rest.
func (s *session) groupStoreError(method string, err error) error {
	if errors.Is(err, store.ErrNotMember) {
		return fail(nodecp.ErrorCode_unauthorized, "%s: %x is not in the group's roster", method, s.identity)
	}
	return s.storeError(method, err)
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
	rl, _ := args.Recipients()
	recipients, err := s.recipientList(method, "recipients", rl)
	if err != nil {
		return err
	}
	welcome, _ := args.Welcome()
	wl, _ := args.WelcomeRecipients()
	welcomeRecipients, err := s.recipientList(method, "welcomeRecipients", wl)
	if err != nil {
		return err
	}
	if len(recipients)+len(welcomeRecipients) > s.srv.cfg.MaxRecipients {
		return fail(nodecp.ErrorCode_limit, "%s: %d recipients and welcome recipients, limit %d",
			method, len(recipients)+len(welcomeRecipients), s.srv.cfg.MaxRecipients)
	}
	if len(welcome) > s.srv.cfg.MaxPayloadSize {
		return fail(nodecp.ErrorCode_tooLarge, "%s: welcome has %d bytes, limit %d", method, len(welcome), s.srv.cfg.MaxPayloadSize)
	}
	switch {
	case len(welcome) == 0 && len(welcomeRecipients) > 0:
		return fail(nodecp.ErrorCode_invalidArgument, "%s: welcome recipients without a welcome", method)
	case len(welcome) > 0 && len(welcomeRecipients) == 0:
		return fail(nodecp.ErrorCode_invalidArgument, "%s: a welcome without welcome recipients", method)
	case len(welcome) > 0:
		if err := checkWelcomeHeader(welcome); err != nil {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: %v", method, err)
		}
	}
	if err := s.admitGroup(ctx, method, len(msg)+len(welcome)); err != nil {
		return err
	}
	res, err := s.srv.cfg.Store.SubmitCommit(ctx, h.groupID, h.epoch, s.identity, msgID, msg,
		recipients, welcome, welcomeRecipients)
	var stale *store.StaleEpochError
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
		s.srv.cfg.Metrics.enqueued(len(msg)*len(recipients) + len(welcome)*len(welcomeRecipients))
		for _, r := range recipients {
			s.srv.notifier.notify(r)
		}
		for _, r := range welcomeRecipients {
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
		h, err := s.checkGroupMessage(method, msg, msgID, contentTypeApplication, contentTypeProposal)
		if err != nil {
			return err
		}
		rl, _ := args.Recipients()
		recipients, err := s.recipientList(method, "recipients", rl)
		if err != nil {
			return err
		}
		if err := s.admitGroup(ctx, method, len(msg)); err != nil {
			return err
		}
		seq, dup, err := s.srv.cfg.Store.FanOut(ctx, h.groupID, s.identity, msgID, msg, recipients)
		if err != nil {
			return s.groupStoreError(method, err)
		}
		if !dup {
			s.srv.cfg.Metrics.enqueued(len(msg) * len(recipients))
			for _, r := range recipients {
				s.srv.notifier.notify(r)
			}
		}
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		out.SetGroupSeq(seq)
		out.SetDuplicate(dup)
		return nil
	})
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
		gs, err := s.srv.cfg.Store.GroupState(ctx, id)
		if err != nil {
			return s.storeError(method, err)
		}
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		out.SetCommitted(gs.Committed)
		out.SetEpoch(gs.Epoch)
		out.SetLastSeq(gs.LastSeq)
		return nil
	})
}
