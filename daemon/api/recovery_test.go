package api_test

import (
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// Three daemons over gRPC and a member that is a raw client built from our
// own packages: its validly signed commit with corrupted path ciphertexts
// passes the node; each daemon, with no call, shows a recovery event naming
// the offender and the leader, then a recovered event with the successor,
// and the group, under its name, works again without the offender.
func TestGroupRecoveryOverGRPC(t *testing.T) {
	node := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	ds := make([]*client.Client, 3)
	keys := make([]string, 3)
	for i := range ds {
		ds[i] = nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
		keys[i] = groupsRegister(t, ds[i])
	}
	ctx := ctxT(t)
	const name = "api recovery"
	cg, err := ds[0].CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	gid := cg.GetGroup().GetGroupId()
	if _, err := ds[0].Invite(ctx, &daemonv1.InviteRequest{Group: name, PeerKeys: keys[1:]}); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds[1:] {
		if j, err := d.Join(ctx, &daemonv1.JoinRequest{Wait: durationpb.New(10 * time.Second)}); err != nil || len(j.GetJoined()) != 1 {
			t.Fatalf("Join: %v %v", j, err)
		}
	}
	// mallory joins as a raw client.
	mallory := grouptest.NewMember(t)
	mc, err := nodeclient.Dial(ctx, node.Addr, nodeclient.Config{PinnedCert: node.CertDER, Identity: mallory.Priv})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if err := mc.Register(ctx, ""); err != nil {
		t.Fatal(err)
	}
	mallory.Conn = mc
	kp, priv, err := mls.GenerateKeyPackage(backend.DefaultCipherSuite, mallory.Signer, &mls.KeyPackageParams{ExtensionTypes: []mls.ExtensionType{backend.ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.UploadKeyPackage(ctx, mallory.Pub, kp.Marshal(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := ds[0].Invite(ctx, &daemonv1.InviteRequest{Group: name, PeerKeys: []string{hex.EncodeToString(mallory.Pub)}}); err != nil {
		t.Fatal(err)
	}
	cfg := mls.Config{MaxPastEpochs: 8, PublicHandshake: true}
	if mallory.Group, err = mls.JoinFromWelcome(mallory.WaitEnvelope(t, "the Welcome").Payload, priv, &mls.JoinOptions{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	streams := make([]daemonv1.Daemon_SubscribeClient, len(ds))
	for i, d := range ds {
		for deadline := time.Now().Add(20 * time.Second); ; {
			m, err := d.Members(ctx, &daemonv1.MembersRequest{Group: name})
			if err == nil && len(m.GetMembers()) == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("daemon %d does not see mallory: %v %v", i, m, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if streams[i], err = d.Subscribe(ctx, &daemonv1.SubscribeRequest{FromNow: true}); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := mc.SubmitCommit(ctx, nodeclient.CommitRequest{Message: grouptest.GarbagePathCommit(t, mallory, cfg)}); err != nil {
		t.Fatalf("the node refused the commit it cannot check: %v", err)
	}
	offender := hex.EncodeToString(mallory.Pub)
	var successor string
	for i, s := range streams {
		var started *daemonv1.GroupRecovery
		for {
			ev, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if r := ev.GetRecovery(); r != nil {
				started = r
			}
			if r := ev.GetRecovered(); r != nil {
				if started == nil || started.GetGroupId() != gid || started.GetGroupName() != name || started.GetOffender() != offender ||
					started.GetLeader() != keys[0] || started.GetReason() == "" {
					t.Fatalf("daemon %d: recovery event %v", i, started)
				}
				if r.GetGroupId() != gid || r.GetGroupName() != name || r.GetOffender() != offender || r.GetLeader() != keys[0] || r.GetSuccessorId() == gid {
					t.Fatalf("daemon %d: recovered event %v", i, r)
				}
				if successor == "" {
					successor = r.GetSuccessorId()
				} else if r.GetSuccessorId() != successor {
					t.Fatalf("daemon %d recovered into %s, another into %s", i, r.GetSuccessorId(), successor)
				}
				break
			}
		}
	}
	var auth string
	for i, d := range ds {
		m, err := d.Members(ctx, &daemonv1.MembersRequest{Group: name})
		if err != nil || m.GetGroup().GetGroupId() != successor || len(m.GetMembers()) != 3 {
			t.Fatalf("daemon %d: %q after the recovery: %v %v", i, name, m, err)
		}
		for _, x := range m.GetMembers() {
			if !slices.Contains(keys, x.GetIdentity()) {
				t.Fatalf("daemon %d: member %s in the successor", i, x.GetIdentity())
			}
		}
		if i == 0 {
			auth = m.GetEpochAuthenticator()
		} else if m.GetEpochAuthenticator() != auth {
			t.Fatalf("daemon %d does not share the successor's state", i)
		}
	}
	if _, err := ds[1].Send(ctx, &daemonv1.SendRequest{Group: name, Text: "after the recovery"}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		for {
			ev, err := streams[i].Recv()
			if err != nil {
				t.Fatal(err)
			}
			if m := ev.GetMessage(); m != nil && m.GetText() == "after the recovery" {
				if m.GetGroupId() != successor || m.GetSender() != keys[1] {
					t.Fatalf("daemon %d: message %v", i, m)
				}
				break
			}
		}
	}
}
