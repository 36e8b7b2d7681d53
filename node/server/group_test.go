package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// MLS header values (RFC 9420 §6) for the messages the group tests build.
const (
	grpContentApplication = 1
	grpContentProposal    = 2
	grpContentCommit      = 3
)

// grpPublic builds an MLSMessage carrying a PublicMessage from member leaf
// 0 with the given content type; tag makes the bytes distinct. Only the
// header is meaningful to the node.
func grpPublic(groupID []byte, epoch uint64, contentType byte, tag string) []byte {
	b := []byte{0, 1, 0, 1}
	b = tlsOpaque(b, groupID)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, 1, 0, 0, 0, 0) // sender: member, leaf 0
	b = tlsOpaque(b, nil)        // authenticated_data
	b = append(b, contentType)
	return append(b, tag...) // stands for the content, auth and membership tag
}

// grpPrivate builds an MLSMessage carrying a PrivateMessage.
func grpPrivate(groupID []byte, epoch uint64, contentType byte, tag string) []byte {
	b := []byte{0, 1, 0, 2}
	b = tlsOpaque(b, groupID)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, contentType)
	b = tlsOpaque(b, nil) // authenticated_data
	return append(b, tag...)
}

// grpWelcome builds an MLSMessage carrying a Welcome.
func grpWelcome(tag string) []byte {
	return append([]byte{0, 1, 0, 3, 0, 1}, tag...)
}

// grpKeys returns the public keys of ids.
func grpKeys(ids ...testIdentity) [][]byte {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = id.pub
	}
	return out
}

// grpWantQueue asserts that c's queue (identity id) holds exactly the given
// payloads, each sent by sender, in order, and returns the envelopes.
func grpWantQueue(t *testing.T, c *client.Client, id testIdentity, sender []byte, payloads ...[]byte) []client.Envelope {
	t.Helper()
	msgs, err := c.Receive(testCtx(t), id.pub, 0, 0)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs) != len(payloads) {
		t.Fatalf("queue of %x holds %d messages, want %d", id.pub[:4], len(msgs), len(payloads))
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Payload, payloads[i]) {
			t.Fatalf("queue of %x: message %d is %q, want %q", id.pub[:4], i, m.Payload, payloads[i])
		}
		if !bytes.Equal(m.Sender, sender) {
			t.Fatalf("queue of %x: message %d sender %x, want %x", id.pub[:4], i, m.Sender, sender)
		}
	}
	return msgs
}

func TestGroupCommitFanOutState(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	alice, bob, carol := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	ca, cb, cc := n.dial(t, alice.priv), n.dial(t, bob.priv), n.dial(t, carol.priv)
	ctx := testCtx(t)
	g := []byte("group-commit-fan")

	gs, err := ca.GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{}) {
		t.Fatalf("GroupState of a new group = %+v, %v; want zero", gs, err)
	}
	c0 := grpPublic(g, 0, grpContentCommit, "add bob and carol")
	w0 := grpWelcome("welcome bob and carol")
	res, err := ca.SubmitCommit(ctx, client.CommitRequest{
		ClientMsgID: []byte("c0"), Message: c0,
		Welcome: w0, WelcomeRecipients: grpKeys(bob, carol),
	})
	if err != nil {
		t.Fatalf("SubmitCommit: %v", err)
	}
	if res != (client.CommitResult{Epoch: 1, GroupSeq: 1}) {
		t.Fatalf("SubmitCommit = %+v, want epoch 1, seq 1", res)
	}
	grpWantQueue(t, cb, bob, alice.pub, w0)
	grpWantQueue(t, cc, carol, alice.pub, w0)

	app := grpPrivate(g, 1, grpContentApplication, "hello")
	seq, dup, err := cb.FanOut(ctx, []byte("m1"), app, grpKeys(alice, carol))
	if err != nil || seq != 2 || dup {
		t.Fatalf("FanOut = %d, %v, %v; want 2, false, nil", seq, dup, err)
	}
	grpWantQueue(t, ca, alice, bob.pub, app)

	c1 := grpPrivate(g, 1, grpContentCommit, "carol updates")
	res, err = cc.SubmitCommit(ctx, client.CommitRequest{ClientMsgID: []byte("c1"), Message: c1, Recipients: grpKeys(alice, bob)})
	if err != nil || res != (client.CommitResult{Epoch: 2, GroupSeq: 3}) {
		t.Fatalf("SubmitCommit at epoch 1 = %+v, %v; want epoch 2, seq 3", res, err)
	}
	_, err = ca.SubmitCommit(ctx, client.CommitRequest{Message: grpPublic(g, 1, grpContentCommit, "late"), Recipients: grpKeys(bob, carol)})
	var se *client.StaleEpochError
	if !errors.Is(err, client.ErrStaleEpoch) || !errors.As(err, &se) || se.Epoch != 1 || se.Current != 2 {
		t.Fatalf("late commit: err = %v, want a stale epoch error naming epoch 1, current 2", err)
	}
	gs, err = cb.GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{Committed: true, Epoch: 2, LastSeq: 3}) {
		t.Fatalf("GroupState = %+v, %v; want committed at epoch 2, last seq 3", gs, err)
	}
	msgs, err := ca.Receive(ctx, alice.pub, 0, 0)
	if err != nil || len(msgs) != 2 || !bytes.Equal(msgs[1].Payload, c1) || !bytes.Equal(msgs[1].Sender, carol.pub) ||
		string(msgs[1].ClientMsgID) != "c1" {
		t.Fatalf("alice's queue: %v %+v; want the application message, then carol's commit", err, msgs)
	}
}
