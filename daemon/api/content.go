package api

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/store"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// This file translates the content calls (replies, reactions, edits,
// deletes, receipts, disappearing messages) between gRPC and the Backend.

var messageKinds = map[store.MessageKind]daemonv1.MessageKind{
	store.KindText:     daemonv1.MessageKind_MESSAGE_KIND_TEXT,
	store.KindReply:    daemonv1.MessageKind_MESSAGE_KIND_REPLY,
	store.KindReaction: daemonv1.MessageKind_MESSAGE_KIND_REACTION,
	store.KindTimer:    daemonv1.MessageKind_MESSAGE_KIND_TIMER,
	store.KindUnknown:  daemonv1.MessageKind_MESSAGE_KIND_UNKNOWN,
	store.KindExpired:  daemonv1.MessageKind_MESSAGE_KIND_EXPIRED,
}

// addContentPB fills in what a message is beyond its text.
func addContentPB(pb *daemonv1.Message, m store.Message) {
	pb.Kind = messageKinds[m.Kind]
	if pb.Kind == daemonv1.MessageKind_MESSAGE_KIND_UNSPECIFIED {
		pb.Kind = daemonv1.MessageKind_MESSAGE_KIND_UNKNOWN
	}
	if len(m.Ref) > 0 {
		pb.Ref = backend.FormatKey(m.Ref)
	}
	pb.EditedAt, pb.Deleted, pb.ExpiresAt = ts(m.EditedAt), m.Deleted, ts(m.ExpiresAt)
	for _, r := range m.Receipts {
		pb.Receipts = append(pb.Receipts, receiptPB(r.Member, r.Status, r.At))
	}
}

func receiptPB(member []byte, status int, at time.Time) *daemonv1.Receipt {
	return &daemonv1.Receipt{Member: backend.FormatKey(member), Status: daemonv1.ReceiptStatus(status), At: ts(at)}
}

// optTime is t, or the zero time when unset.
func optTime(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// contentEventPB fills in an edited, deleted, receipt or timer event.
func contentEventPB(pb *daemonv1.Event, e backend.Event, g store.Group) {
	var msg *daemonv1.Message
	if e.Message != nil {
		msg = messagePB(*e.Message, g)
	}
	switch e.Kind {
	case store.EventEdited:
		pb.Kind = &daemonv1.Event_Edited{Edited: msg}
	case store.EventDeleted:
		pb.Kind = &daemonv1.Event_Deleted{Deleted: msg}
	case store.EventReceipt:
		st := map[string]int{"delivered": 1, "read": 2}[e.State]
		pb.Kind = &daemonv1.Event_Receipt{Receipt: &daemonv1.ReceiptEvent{Message: msg, GroupId: backend.FormatKey(e.GroupID),
			Receipt: receiptPB(e.Member, st, e.At)}}
	case store.EventTimer:
		d := &daemonv1.DisappearingChanged{GroupId: backend.FormatKey(e.GroupID), GroupName: g.Name, By: backend.FormatKey(e.By)}
		if n, err := strconv.ParseUint(e.State, 10, 32); err == nil && n > 0 {
			d.After = durationpb.New(time.Duration(n) * time.Second)
		}
		pb.Kind = &daemonv1.Event_Disappearing{Disappearing: d}
	}
}

// React implements the React call.
func (s *Server) React(ctx context.Context, req *daemonv1.ReactRequest) (*daemonv1.SendResponse, error) {
	wait, err := optionalDuration(req.GetWait())
	if err != nil {
		return nil, err
	}
	r, err := s.b.React(ctx, req.GetGroup(), req.GetMessage(), req.GetReaction(), []byte(req.GetClientMessageId()))
	if err != nil {
		return nil, toStatus(err)
	}
	return s.sendResponse(ctx, r, wait)
}

// Edit implements the Edit call.
func (s *Server) Edit(ctx context.Context, req *daemonv1.EditRequest) (*daemonv1.SendResponse, error) {
	wait, err := optionalDuration(req.GetWait())
	if err != nil {
		return nil, err
	}
	r, err := s.b.Edit(ctx, req.GetGroup(), req.GetMessage(), req.GetText(), []byte(req.GetClientMessageId()))
	if err != nil {
		return nil, toStatus(err)
	}
	return s.sendResponse(ctx, r, wait)
}

// Delete implements the Delete call.
func (s *Server) Delete(ctx context.Context, req *daemonv1.DeleteRequest) (*daemonv1.SendResponse, error) {
	wait, err := optionalDuration(req.GetWait())
	if err != nil {
		return nil, err
	}
	r, err := s.b.Delete(ctx, req.GetGroup(), req.GetMessage(), []byte(req.GetClientMessageId()))
	if err != nil {
		return nil, toStatus(err)
	}
	return s.sendResponse(ctx, r, wait)
}

// SetDisappearing implements the SetDisappearing call.
func (s *Server) SetDisappearing(ctx context.Context, req *daemonv1.SetDisappearingRequest) (*daemonv1.SendResponse, error) {
	wait, err := optionalDuration(req.GetWait())
	if err != nil {
		return nil, err
	}
	var after time.Duration
	if d := req.GetAfter(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "after: %v", err)
		}
		after = d.AsDuration()
	}
	r, err := s.b.SetDisappearing(ctx, req.GetGroup(), after)
	if err != nil {
		return nil, toStatus(err)
	}
	return s.sendResponse(ctx, r, wait)
}
