package server_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
)

// deviceOf makes a member for device key priv certified by u, not
// connected to any node.
func deviceOf(t *testing.T, u *devid.User, priv ed25519.PrivateKey) *grouptest.Member {
	t.Helper()
	pub := priv.Public().(ed25519.PublicKey)
	chain, err := u.IssueDevice(pub, "stray", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := devid.Signer(chain, priv)
	if err != nil {
		t.Fatal(err)
	}
	return &grouptest.Member{Pub: pub, Priv: priv, Signer: s}
}

// groupInfoWith is the GroupInfo of a group creator makes locally with
// joiners already added.
func groupInfoWith(t *testing.T, creator *grouptest.Member, joiners ...*grouptest.Member) []byte {
	t.Helper()
	g, err := mls.CreateGroup(grouptest.Suite, nil, creator.Signer, &mls.CreateOptions{Config: grouptest.Config})
	if err != nil {
		t.Fatal(err)
	}
	var kps []*mls.KeyPackage
	for _, j := range joiners {
		kps = append(kps, j.KeyPackage(t))
	}
	if _, err := g.AddMembers(kps, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	gi, err := g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	return gi
}

// A client holding a user's key certifies device keys it never lists (or
// that another user lists): the node refuses their leaves in a GroupInfo,
// in a commit's Adds and in Add proposals, while the user's listed device
// and single-device (basic) members go on.
func TestUnlistedDeviceLeaf(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	mallory := newDevUser(t, n)
	bob := newDevUser(t, n)
	U := alice.user.PublicKey()
	laptop := newDevice(t, n, alice.user, alice.user)
	phone := newDevice(t, n, alice.user, alice.user)
	alice.publish(t, U, laptop.Pub, phone.Pub)
	// Never listed; it connects, so the node knows it is not revoked.
	stray := newDevice(t, n, alice.user, alice.user)
	// Listed by mallory, certified by alice.
	other := newDevice(t, n, mallory.user, mallory.user)
	mallory.publish(t, mallory.user.PublicKey(), other.Pub)
	claimed := deviceOf(t, alice.user, other.Priv)
	unlisted := []struct {
		name string
		m    *grouptest.Member
	}{{"never listed", stray}, {"listed by another user", claimed}}

	// GroupInfo.
	for _, u := range unlisted {
		wantErr(t, "GroupInfo with a device "+u.name, alice.primary.Conn.CreateGroup(ctx, groupInfoWith(t, alice.primary, u.m)), client.ErrUnauthorized)
	}
	if err := alice.primary.Conn.CreateGroup(ctx, groupInfoWith(t, alice.primary, laptop, bob.primary)); err != nil {
		t.Fatalf("GroupInfo with a listed device and a basic member: %v", err)
	}

	// Commits adding the device.
	gid := alice.primary.Create(t)
	alice.primary.Add(t, laptop)
	for _, u := range unlisted {
		res, err := alice.primary.Group.AddMembers([]*mls.KeyPackage{u.m.KeyPackage(t)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = alice.primary.Conn.SubmitCommit(ctx, client.CommitRequest{Message: res.Message, Welcome: res.Welcome})
		wantErr(t, "commit adding a device "+u.name, err, client.ErrInvalidCommit)
		if err := alice.primary.Group.DiscardPendingCommit(); err != nil {
			t.Fatal(err)
		}
	}
	alice.primary.Add(t, bob.primary)

	// Add proposals: the listed phone's is taken, the others refused.
	msg, err := alice.primary.Group.ProposeAdd(phone.KeyPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.primary.Conn.FanOut(ctx, nil, msg); err != nil {
		t.Fatalf("proposal adding the listed phone: %v", err)
	}
	for _, u := range unlisted {
		msg, err := alice.primary.Group.ProposeAdd(u.m.KeyPackage(t))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = alice.primary.Conn.FanOut(ctx, nil, msg)
		wantErr(t, "proposal adding a device "+u.name, err, client.ErrInvalidCommit)
	}
	st, err := laptop.Conn.GroupState(ctx, gid)
	if err != nil || st.Epoch != alice.primary.Group.Epoch() || st.Members != 3 {
		t.Fatalf("group after refusals: %+v, %v", st, err)
	}
	checkServingDevices(t, n)
}

// An Add proposal of a revoked device is refused when it arrives at the
// node, not only once a commit covers it; the listed device's is taken.
func TestRevokedDeviceProposal(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	laptop := newDevice(t, n, alice.user, alice.user)
	phone := newDevice(t, n, alice.user, alice.user)
	alice.publish(t, U, laptop.Pub, phone.Pub)
	phoneKP := phone.KeyPackage(t)
	alice.publish(t, U, laptop.Pub)
	alice.primary.Create(t)

	msg, err := alice.primary.Group.ProposeAdd(laptop.KeyPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.primary.Conn.FanOut(ctx, nil, msg); err != nil {
		t.Fatalf("proposal adding the listed laptop: %v", err)
	}
	if msg, err = alice.primary.Group.ProposeAdd(phoneKP); err != nil {
		t.Fatal(err)
	}
	_, _, err = alice.primary.Conn.FanOut(ctx, nil, msg)
	wantErr(t, "proposal adding a revoked device", err, client.ErrInvalidCommit)
}
