package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// hostileMember joins a group of real daemons as a raw MLS client that can
// send whatever it can sign: it uploads a KeyPackage, is invited by
// inviter, and joins from the Welcome the node delivers.
func hostileMember(t *testing.T, node *testnode.Node, inviter *groupsUser, group string) *grouptest.Member {
	t.Helper()
	ctx := context.Background()
	m := grouptest.NewMember(t)
	m.Conn = pipelinePeer(t, node, m.Priv)
	kp, priv, err := mls.GenerateKeyPackage(DefaultCipherSuite, m.Signer, &mls.KeyPackageParams{ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Conn.UploadKeyPackage(ctx, m.Pub, kp.Marshal(), false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := inviter.b.Invite(ctx, group, []ed25519.PublicKey{m.Pub}); err != nil {
		t.Fatalf("invite the hostile member: %v", err)
	}
	e := hostileNext(t, m, "the Welcome")
	if m.Group, err = mls.JoinFromWelcome(e.Payload, priv, &mls.JoinOptions{Config: groupConfig}); err != nil {
		t.Fatal(err)
	}
	return m
}

// hostileNext waits for the next envelope of m that is not a node notice.
func hostileNext(t *testing.T, m *grouptest.Member, what string) nodeclient.Envelope {
	t.Helper()
	return m.WaitEnvelope(t, what)
}

// A member of a group of real daemons forges every commit it can sign: the
// node refuses each with a typed error, nothing reaches the daemons, and
// the group keeps working (invite, remove, send). Removed, the member
// receives its removal, then nothing, and the node takes nothing more from
// it.
func TestHostileMemberCannotBreakTheGroup(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "hostile", alice, bob)
	mallory := hostileMember(t, node, alice, gid)
	groupsWait(t, "bob sees mallory", func() bool {
		m, err := bob.b.Members(ctx, gid)
		return err == nil && len(m.Members) == 3
	})
	m, err := alice.b.Members(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	epoch := m.Epoch
	g := mallory.Group.GroupID()
	submit := func(msg []byte) error {
		_, err := mallory.Conn.SubmitCommit(ctx, nodeclient.CommitRequest{Message: msg})
		return err
	}
	up, err := mallory.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	gc := mallory.Group.GroupContext()
	stranger := grouptest.NewMember(t)
	garbage := append([]byte{0, 1, 0, 1, byte(len(g))}, g...)
	garbage = append(append(garbage, 0, 0, 0, 0, 0, 0, 0, byte(epoch), 1, 0, 0, 0, 0, 0, 3), "garbage"...)
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"garbage under a commit header", garbage, nodeclient.ErrInvalidCommit},
		{"a commit signed by a non-member's key", grouptest.Resign(t, up.Message, stranger.Signer.SignaturePriv, gc, nil), nodeclient.ErrInvalidCommit},
		{"a commit with an invalid proposal", grouptest.Resign(t, up.Message, mallory.Signer.SignaturePriv, gc, func(fc *mls.FramedContent) {
			fc.Commit.Proposals = append(fc.Commit.Proposals, mls.ProposalOrRef{Type: mls.ProposalOrRefProposal,
				Proposal: &mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.RemoveProposal{Removed: 42}}})
		}), nodeclient.ErrInvalidCommit},
		{"a commit for a future epoch", grouptest.Resign(t, up.Message, mallory.Signer.SignaturePriv, gc, func(fc *mls.FramedContent) {
			fc.Epoch += 2
		}), nodeclient.ErrFutureEpoch},
	} {
		if err := submit(tc.msg); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The same valid commit, enqueued directly to bob rather than
	// submitted to the group's order, is not applied.
	if _, _, err := mallory.Conn.Enqueue(ctx, bob.id, up.Message, []byte("sneaky")); err != nil {
		t.Fatalf("direct enqueue: %v", err)
	}
	groupsWait(t, "bob rejects the directly enqueued commit", func() bool {
		evs, err := bob.b.EventsAfter(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(evs, func(e Event) bool {
			return e.Kind == store.EventRejected && bytes.Equal(e.By, mallory.Pub)
		})
	})
	if m, err := bob.b.Members(ctx, gid); err != nil || m.Epoch != epoch {
		t.Fatalf("bob after the direct commit: epoch %d, %v; want %d", m.Epoch, err, epoch)
	}
	if err := mallory.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}

	// The group goes on: alice removes mallory; mallory receives its
	// removal and is out.
	if _, err := alice.b.Remove(ctx, gid, mallory.Pub); err != nil {
		t.Fatalf("remove mallory: %v", err)
	}
	e := hostileNext(t, mallory, "its removal")
	if r, err := mallory.Group.ProcessMessage(e.Payload); err != nil || !r.SelfRemoved || !e.Sequenced {
		t.Fatalf("mallory's removal: %+v, %v", r, err)
	}
	// Mallory, just removed, signs a commit for the new epoch from its old
	// leaf, and tries to send: refused.
	oldLeaf := mallory.Group.OwnLeaf()
	after := grouptest.Resign(t, up.Message, mallory.Signer.SignaturePriv, gc, func(fc *mls.FramedContent) {
		fc.Epoch, fc.Sender = epoch+1, mls.MemberSender(oldLeaf)
	})
	if err := submit(after); !errors.Is(err, nodeclient.ErrUnauthorized) {
		t.Fatalf("the removed member's commit: %v, want ErrUnauthorized", err)
	}
	if _, _, err := mallory.Conn.FanOut(ctx, nil, garbage); err == nil {
		t.Fatal("the removed member fanned out")
	}
	carol := groupsStart(t, node)
	if _, _, err := bob.b.Invite(ctx, gid, []ed25519.PublicKey{carol.id}); err != nil {
		t.Fatalf("invite after the attacks: %v", err)
	}
	if j, err := carol.b.Join(ctx, 10*time.Second); err != nil || len(j) != 1 {
		t.Fatalf("carol joins: %v %v", j, err)
	}
	if _, err := alice.b.Send(ctx, gid, "still here", nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*groupsUser{bob, carol} {
		groupsWait(t, "the message after the attacks", func() bool { return slices.Contains(groupsTexts(t, u, gid), "still here") })
	}
	// Mallory read nothing after its removal.
	envs, err := mallory.Conn.Receive(ctx, mallory.Pub, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		if !nodeclient.IsNodeNotice(e) {
			t.Fatalf("the removed member got a %d-byte message from %x", len(e.Payload), e.Sender[:4])
		}
	}
}
