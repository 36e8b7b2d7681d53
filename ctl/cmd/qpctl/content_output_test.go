package main

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// What a message is shows in brackets before its text, and hostile text
// in a reaction or reply is escaped like any other.
func TestContentLine(t *testing.T) {
	ref := "0123456789abcdef0123456789abcdef"
	at := timestamppb.Now()
	for _, tc := range []struct {
		m    *daemonv1.Message
		note string
		want string
	}{
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_REPLY, Ref: ref, Text: "ok\x1b[2J"}, "", "[reply to 01234567] ok\\x1b[2J"},
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_REACTION, Ref: ref, Text: "\u202e👍"}, "", "[reaction \\u202e👍 to 01234567]"},
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_TIMER, Text: "3600"}, "", "[disappearing messages after 1h0m0s]"},
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_TIMER, Text: "0"}, "", "[disappearing messages off]"},
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_TEXT, Deleted: true}, "deleted", "[deleted]"},
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_TEXT, Text: "new", EditedAt: at}, "", "[edited] new"},
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_TEXT, Text: "seen", Receipts: []*daemonv1.Receipt{
			{Status: daemonv1.ReceiptStatus_RECEIPT_STATUS_READ}, {Status: daemonv1.ReceiptStatus_RECEIPT_STATUS_DELIVERED}}}, "", "[delivered 2, read 1] seen"},
		{&daemonv1.Message{Kind: daemonv1.MessageKind_MESSAGE_KIND_EXPIRED}, "", "[expired]"},
	} {
		if got := contentLine(tc.m, tc.note); got != tc.want {
			t.Errorf("contentLine(%v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}
