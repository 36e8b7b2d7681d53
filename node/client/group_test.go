package client_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/node/client"
)

// The group calls as the daemon uses them: a group created, a commit with a
// Welcome, a stale commit answered with the current epoch, a resubmission,
// a fan-out, the group state; and a sender that declares recipients is
// refused.
func TestGroupCalls(t *testing.T) {
	addr, cert := clientTestNode(t)
	ctx := clientTestCtx(t)
	member := func() *grouptest.Member {
		m := grouptest.NewMember(t)
		c, err := client.Dial(ctx, addr, client.Config{Identity: m.Priv, PinnedCert: cert})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		m.Conn = c
		return m
	}
	alice, bob, mallory := member(), member(), member()
	g := alice.Create(t)
	alice.Add(t, bob)
	up, err := bob.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	late, err := alice.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	req := client.CommitRequest{ClientMsgID: []byte("update"), Message: up.Message}
	res, err := bob.Conn.SubmitCommit(ctx, req)
	if err != nil || res != (client.CommitResult{Epoch: 2, GroupSeq: 2}) {
		t.Fatalf("SubmitCommit = %+v, %v; want epoch 2, group seq 2", res, err)
	}
	if res, err := bob.Conn.SubmitCommit(ctx, req); err != nil || res != (client.CommitResult{Epoch: 2, GroupSeq: 2, Duplicate: true}) {
		t.Fatalf("resubmission = %+v, %v; want the original as a duplicate", res, err)
	}
	_, err = alice.Conn.SubmitCommit(ctx, client.CommitRequest{Message: late.Message})
	var se *client.StaleEpochError
	if !errors.Is(err, client.ErrStaleEpoch) || !errors.As(err, &se) || *se != (client.StaleEpochError{Epoch: 1, Current: 2}) {
		t.Fatalf("stale commit: %v", err)
	}
	e := alice.NextEnvelope(t, "bob's commit")
	if !bytes.Equal(e.Payload, up.Message) || !bytes.Equal(e.Sender, bob.Pub) || !e.Sequenced || string(e.ClientMsgID) != "update" {
		t.Fatalf("alice's queue: %+v; want bob's commit, sequenced", e)
	}
	// Declared recipients are refused, whoever they name.
	if err := client.DeclaringCommit(ctx, bob.Conn, up.Message, [][]byte{mallory.Pub}, nil); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("commit declaring a recipient: %v, want ErrInvalidArgument", err)
	}
	if err := client.DeclaringCommit(ctx, bob.Conn, up.Message, nil, [][]byte{mallory.Pub}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("commit declaring a welcome recipient: %v, want ErrInvalidArgument", err)
	}
	app := []byte{0, 1, 0, 2, byte(len(g))}
	app = append(append(app, g...), 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 'x')
	if err := client.DeclaringFanOut(ctx, bob.Conn, app, [][]byte{mallory.Pub}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("fan out declaring a recipient: %v, want ErrInvalidArgument", err)
	}
	seq, dup, err := bob.Conn.FanOut(ctx, []byte("hello"), app)
	if err != nil || seq != 3 || dup {
		t.Fatalf("FanOut = %d, %v, %v", seq, dup, err)
	}
	mallory.Empty(t)
	gs, err := alice.Conn.GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{Epoch: 2, LastSeq: 3, Members: 2}) {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
	if _, err := mallory.Conn.GroupState(ctx, g); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("GroupState for a stranger: %v, want ErrUnauthorized", err)
	}
}
