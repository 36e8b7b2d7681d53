package api_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// Over gRPC: React, Edit, Delete, SetDisappearing and replies, their
// errors, and the Subscribe stream carrying every new event kind (a
// reaction message, edited, deleted, receipt, disappearing).
func TestContentCallsAndEvents(t *testing.T) {
	node := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	a := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	b := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	aliceKey, bobKey := groupsRegister(t, a), groupsRegister(t, b)
	ctx := ctxT(t)
	aliceEvents, err := a.Subscribe(ctx, &daemonv1.SubscribeRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	bobEvents, err := b.Subscribe(ctx, &daemonv1.SubscribeRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	cg, err := a.CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: "content"})
	if err != nil {
		t.Fatal(err)
	}
	gid := cg.GetGroup().GetGroupId()
	if _, err := a.Invite(ctx, &daemonv1.InviteRequest{Group: gid, PeerKeys: []string{bobKey}}); err != nil {
		t.Fatal(err)
	}
	if j, err := b.Join(ctx, &daemonv1.JoinRequest{Wait: durationpb.New(10 * time.Second)}); err != nil || len(j.GetJoined()) != 1 {
		t.Fatalf("Join: %v %v", j, err)
	}
	wait := durationpb.New(5 * time.Second)
	hi, err := a.Send(ctx, &daemonv1.SendRequest{Group: gid, Text: "hi", Wait: wait})
	if err != nil {
		t.Fatal(err)
	}
	if hi.GetGroupSeq() == 0 {
		t.Fatalf("delivered without a group number: %v", hi)
	}
	next := func(who string, stream daemonv1.Daemon_SubscribeClient, want func(*daemonv1.Event) bool) *daemonv1.Event {
		t.Helper()
		for {
			ev, err := stream.Recv()
			if err != nil {
				t.Fatalf("%s's events: %v", who, err)
			}
			if want(ev) {
				return ev
			}
		}
	}
	next("bob", bobEvents, func(e *daemonv1.Event) bool { return e.GetMessage().GetText() == "hi" })
	// Bob's daemon sends a delivery receipt as "hi" arrives.
	rc := next("alice", aliceEvents, func(e *daemonv1.Event) bool { return e.GetReceipt() != nil }).GetReceipt()
	if rc.GetReceipt().GetMember() != bobKey || rc.GetMessage().GetMessageId() != hi.GetMessageId() || rc.GetReceipt().GetStatus() != daemonv1.ReceiptStatus_RECEIPT_STATUS_DELIVERED {
		t.Fatalf("receipt %v", rc)
	}
	if _, err := b.React(ctx, &daemonv1.ReactRequest{Group: gid, Message: hi.GetMessageId(), Reaction: "🎉", Wait: wait}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, &daemonv1.SendRequest{Group: gid, Text: "hello", ReplyTo: fmt.Sprintf("#%d", hi.GetGroupSeq()), Wait: wait}); err != nil {
		t.Fatal(err)
	}
	r := next("alice", aliceEvents, func(e *daemonv1.Event) bool {
		return e.GetMessage().GetKind() == daemonv1.MessageKind_MESSAGE_KIND_REACTION
	}).GetMessage()
	if r.GetText() != "🎉" || r.GetRef() != hi.GetMessageId() || r.GetSender() != bobKey {
		t.Fatalf("reaction %v", r)
	}
	rep := next("alice", aliceEvents, func(e *daemonv1.Event) bool {
		return e.GetMessage().GetKind() == daemonv1.MessageKind_MESSAGE_KIND_REPLY
	}).GetMessage()
	if rep.GetText() != "hello" || rep.GetRef() != hi.GetMessageId() {
		t.Fatalf("reply %v", rep)
	}

	if _, err := a.Edit(ctx, &daemonv1.EditRequest{Group: gid, Message: hi.GetMessageId(), Text: "hi all", Wait: wait}); err != nil {
		t.Fatal(err)
	}
	if ed := next("bob", bobEvents, func(e *daemonv1.Event) bool { return e.GetEdited() != nil }).GetEdited(); ed.GetText() != "hi all" || ed.GetEditedAt() == nil {
		t.Fatalf("edited %v", ed)
	}
	if _, err := a.Delete(ctx, &daemonv1.DeleteRequest{Group: gid, Message: hi.GetMessageId(), Wait: wait}); err != nil {
		t.Fatal(err)
	}
	if del := next("bob", bobEvents, func(e *daemonv1.Event) bool { return e.GetDeleted() != nil }).GetDeleted(); !del.GetDeleted() || del.GetText() != "" {
		t.Fatalf("deleted %v", del)
	}
	if _, err := a.SetDisappearing(ctx, &daemonv1.SetDisappearingRequest{Group: gid, After: durationpb.New(time.Hour), Wait: wait}); err != nil {
		t.Fatal(err)
	}
	d := next("bob", bobEvents, func(e *daemonv1.Event) bool { return e.GetDisappearing() != nil }).GetDisappearing()
	if d.GetAfter().AsDuration() != time.Hour || d.GetBy() != aliceKey || d.GetGroupName() != "content" {
		t.Fatalf("disappearing %v", d)
	}
	gs, err := b.ListGroups(ctx, &daemonv1.ListGroupsRequest{})
	if err != nil || len(gs.GetGroups()) != 1 || gs.GetGroups()[0].GetDisappearAfter().AsDuration() != time.Hour {
		t.Fatalf("ListGroups: %v %v", gs, err)
	}
	after, err := a.Send(ctx, &daemonv1.SendRequest{Group: gid, Text: "fleeting", Wait: wait})
	if err != nil {
		t.Fatal(err)
	}
	m := next("bob", bobEvents, func(e *daemonv1.Event) bool { return e.GetMessage().GetMessageId() == after.GetMessageId() }).GetMessage()
	if exp := m.GetExpiresAt().AsTime(); exp.Before(time.Now().Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("expires at %v", exp)
	}
	found, err := b.Messages(ctx, &daemonv1.MessagesRequest{Group: gid, Search: "FLEET"})
	if err != nil || len(found.GetMessages()) != 1 || found.GetMessages()[0].GetMessageId() != after.GetMessageId() {
		t.Fatalf("search: %v %v", found, err)
	}

	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"edit of another's message", func() error {
			_, err := b.Edit(ctx, &daemonv1.EditRequest{Group: gid, Message: after.GetMessageId(), Text: "x"})
			return err
		}(), codes.PermissionDenied},
		{"react to a missing message", func() error {
			_, err := b.React(ctx, &daemonv1.ReactRequest{Group: gid, Message: "#999", Reaction: "x"})
			return err
		}(), codes.NotFound},
		{"a timer of part seconds", func() error {
			_, err := a.SetDisappearing(ctx, &daemonv1.SetDisappearingRequest{Group: gid, After: durationpb.New(1500 * time.Millisecond)})
			return err
		}(), codes.InvalidArgument},
		{"a bad message reference", func() error {
			_, err := a.Delete(ctx, &daemonv1.DeleteRequest{Group: gid, Message: "xyz"})
			return err
		}(), codes.InvalidArgument},
	} {
		if status.Code(tc.err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.code)
		}
	}
}
