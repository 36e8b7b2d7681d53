package api_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

func groupsRegister(t *testing.T, c *client.Client) string {
	t.Helper()
	ctx := ctxT(t)
	r, err := c.Register(ctx, &daemonv1.RegisterRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		st, err := c.Status(ctx, &daemonv1.StatusRequest{})
		if err == nil && st.GetNode().GetState() == daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED && st.GetKeyPackagesLeft() > 0 {
			return r.GetIdentity()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no KeyPackages at the node: %v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Over gRPC: create, invite, join (waiting), send, and Subscribe shows the
// joined, member_added, message and rejected events.
func TestGroupCallsThroughNode(t *testing.T) {
	node := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	a := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	b := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	aliceKey, bobKey := groupsRegister(t, a), groupsRegister(t, b)
	ctx := ctxT(t)
	bobEvents, err := b.Subscribe(ctx, &daemonv1.SubscribeRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	cg, err := a.CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	gid := cg.GetGroup().GetGroupId()
	inv, err := a.Invite(ctx, &daemonv1.InviteRequest{Group: "api", PeerKeys: []string{bobKey}})
	if err != nil || len(inv.GetAdded()) != 1 || inv.GetAdded()[0] != bobKey || inv.GetGroup().GetMemberCount() != 2 {
		t.Fatalf("Invite: %v %v", inv, err)
	}
	j, err := b.Join(ctx, &daemonv1.JoinRequest{Wait: durationpb.New(10 * time.Second)})
	if err != nil || len(j.GetJoined()) != 1 || j.GetJoined()[0].GetName() != "api" {
		t.Fatalf("Join: %v %v", j, err)
	}
	if _, err := a.Send(ctx, &daemonv1.SendRequest{Group: gid, Text: "over grpc"}); err != nil {
		t.Fatal(err)
	}
	// Something that is not MLS, straight into Bob's queue.
	_, strangerKey, _ := ed25519.GenerateKey(nil)
	raw, err := nodeclient.Dial(ctx, node.Addr, nodeclient.Config{PinnedCert: node.CertDER, Identity: strangerKey})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Register(ctx, ""); err != nil {
		t.Fatal(err)
	}
	bobRaw, _ := hex.DecodeString(bobKey)
	if _, _, err := raw.Enqueue(ctx, bobRaw, []byte("not an MLS message"), []byte("junk-1")); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for !(seen["joined"] && seen["message"] && seen["rejected"]) {
		ev, err := bobEvents.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.GetJoined() != nil:
			if ev.GetJoined().GetGroupId() != gid || ev.GetJoined().GetName() != "api" {
				t.Fatalf("joined event %v", ev)
			}
			seen["joined"] = true
		case ev.GetMessage() != nil:
			m := ev.GetMessage()
			if m.GetText() != "over grpc" || m.GetSender() != aliceKey || m.GetGroupId() != gid {
				t.Fatalf("message event %v", ev)
			}
			seen["message"] = true
		case ev.GetRejected() != nil:
			r := ev.GetRejected()
			if r.GetSender() != hex.EncodeToString(strangerKey.Public().(ed25519.PublicKey)) || r.GetNodeSeq() == 0 || r.GetReason() == "" {
				t.Fatalf("rejected event %v", ev)
			}
			seen["rejected"] = true
		}
	}
	mr, err := b.Members(ctx, &daemonv1.MembersRequest{Group: gid})
	ma, err2 := a.Members(context.Background(), &daemonv1.MembersRequest{Group: gid})
	if err != nil || err2 != nil || mr.GetEpoch() != 1 || mr.GetEpochAuthenticator() != ma.GetEpochAuthenticator() || len(mr.GetMembers()) != 2 {
		t.Fatalf("Members: %v %v / %v %v", mr, err, ma, err2)
	}
	// Each person once, with its one device: the identity key itself.
	for _, m := range mr.GetMembers() {
		if d := m.GetDevices(); len(d) != 1 || d[0].GetKey() != m.GetIdentity() || d[0].GetLeafIndex() != m.GetLeafIndex() || d[0].GetSelf() != m.GetSelf() {
			t.Fatalf("member %v: devices %v", m, d)
		}
	}
}
