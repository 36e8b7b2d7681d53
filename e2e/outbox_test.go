package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// dialDaemon connects to a user's qpd over its gRPC socket.
func dialDaemon(t *testing.T, u *user) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), u.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// 2000 messages sent while the node is killed four times (and rate-limits
// the sender) arrive in order, none lost and none twice.
func TestOutboxOrderThroughNodeKills(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	root := tempDir(t)
	// A rate limit the sender runs into: the node refuses some sends for
	// now, and they must be retried in place.
	limits := []string{"--rate-limit", "400", "--rate-burst", "100"}
	n := startNode(t, tempDir(t), "127.0.0.1:0", limits...)
	alice, bob := newUser(t, root, "alice", n.addr), newUser(t, root, "bob", n.addr)
	alice.register(t)
	bob.register(t)
	ac, bc := dialDaemon(t, alice), dialDaemon(t, bob)
	ctx := context.Background()
	g, err := ac.CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: "order"})
	if err != nil {
		t.Fatal(err)
	}
	gid := g.Group.GroupId
	// Bob takes Alice's invitations (she is a contact of his).
	if _, err := bc.AddContact(ctx, &daemonv1.AddContactRequest{Identity: alice.id, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Invite(ctx, &daemonv1.InviteRequest{Group: gid, PeerKeys: []string{bob.id}}); err != nil {
		t.Fatal(err)
	}
	if j, err := bc.Join(ctx, &daemonv1.JoinRequest{Wait: durationpb.New(30 * time.Second)}); err != nil || len(j.Joined) != 1 {
		t.Fatalf("bob joins: %v %v", j, err)
	}

	const total = 2000
	sent := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := ac.Send(ctx, &daemonv1.SendRequest{Group: gid, Text: fmt.Sprintf("m%04d", i)}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	received := func() int {
		r, err := bc.Status(ctx, &daemonv1.StatusRequest{})
		if err != nil {
			return -1
		}
		return int(r.UnreadMessages)
	}
	for kill := 1; kill <= 4; kill++ {
		// Let some messages through, then kill the node mid-stream.
		at := kill * total / 5
		waitFor(t, fmt.Sprintf("bob has %d messages before kill %d", at, kill), func() bool { return received() >= at })
		n.p.stop(syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
		n = startNode(t, n.dir, n.addr, limits...)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob has every message", func() bool { return received() >= total })
	var texts []string
	after := uint64(0)
	for {
		r, err := bc.Messages(ctx, &daemonv1.MessagesRequest{Group: gid, AfterSeq: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Messages {
			texts = append(texts, m.Text)
		}
		after = r.NextCursor
		if !r.More {
			break
		}
	}
	if len(texts) != total {
		t.Fatalf("bob has %d messages, want %d", len(texts), total)
	}
	for i, text := range texts {
		if want := fmt.Sprintf("m%04d", i); text != want {
			t.Fatalf("message %d is %q, want %q (out of order, lost or repeated)", i, text, want)
		}
	}
}
