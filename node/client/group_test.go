package client_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/node/client"
)

// clientGroupMsg builds an MLSMessage carrying a PrivateMessage of group g
// at epoch with the given content type (1 application, 2 proposal, 3
// commit); body stands for the encrypted rest.
func clientGroupMsg(g []byte, epoch uint64, contentType byte, body string) []byte {
	b := []byte{0, 1, 0, 2, byte(len(g))}
	b = append(b, g...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, contentType, 0)
	return append(b, body...)
}

// The group calls as the daemon uses them: a commit with a Welcome, a
// stale commit answered with the current epoch, a resubmission, a fan-out,
// and the group state.
func TestGroupCalls(t *testing.T) {
	addr, cert := clientTestNode(t)
	ctx := clientTestCtx(t)
	dial := func() (*client.Client, ed25519.PublicKey) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		c, err := client.Dial(ctx, addr, client.Config{Identity: priv, PinnedCert: cert})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, c.Identity()
	}
	alice, alicePub := dial()
	bob, bobPub := dial()
	g := make([]byte, 16)
	rand.Read(g)
	welcome := []byte{0, 1, 0, 3, 0xaa}
	req := client.CommitRequest{
		ClientMsgID: []byte("add bob"), Message: clientGroupMsg(g, 0, 3, "add bob"),
		Welcome: welcome, WelcomeRecipients: [][]byte{bobPub},
	}
	res, err := alice.SubmitCommit(ctx, req)
	if err != nil || res != (client.CommitResult{Epoch: 1, GroupSeq: 1}) {
		t.Fatalf("SubmitCommit = %+v, %v; want epoch 1, group seq 1", res, err)
	}
	if res, err := alice.SubmitCommit(ctx, req); err != nil || res != (client.CommitResult{Epoch: 1, GroupSeq: 1, Duplicate: true}) {
		t.Fatalf("resubmission = %+v, %v; want the original as a duplicate", res, err)
	}
	_, err = bob.SubmitCommit(ctx, client.CommitRequest{Message: clientGroupMsg(g, 0, 3, "late"), Recipients: [][]byte{alicePub}})
	var se *client.StaleEpochError
	if !errors.Is(err, client.ErrStaleEpoch) || !errors.As(err, &se) || *se != (client.StaleEpochError{Epoch: 0, Current: 1}) {
		t.Fatalf("stale commit: %v", err)
	}
	msgs, err := bob.Receive(ctx, bobPub, 0, 0)
	if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0].Payload, welcome) || !bytes.Equal(msgs[0].Sender, alicePub) ||
		string(msgs[0].ClientMsgID) != "add bob" {
		t.Fatalf("bob's queue: %+v, %v; want alice's Welcome", msgs, err)
	}
	app := clientGroupMsg(g, 1, 1, "hello")
	seq, dup, err := bob.FanOut(ctx, []byte("hello"), app, [][]byte{alicePub})
	if err != nil || seq != 2 || dup {
		t.Fatalf("FanOut = %d, %v, %v", seq, dup, err)
	}
	if _, _, err := bob.FanOut(ctx, nil, clientGroupMsg(g, 1, 3, "commit"), [][]byte{alicePub}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("FanOut of a commit: %v, want ErrInvalidArgument", err)
	}
	gs, err := alice.GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{Committed: true, Epoch: 1, LastSeq: 2}) {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
}
