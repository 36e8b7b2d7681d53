package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// directChats lists u's direct chats with peer (ListGroups' view).
func directChats(t *testing.T, u *groupsUser, peer []byte) []GroupInfo {
	t.Helper()
	gs, err := u.b.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []GroupInfo
	for _, g := range gs {
		if bytes.Equal(g.DirectPeer, peer) {
			out = append(out, g)
		}
	}
	return out
}

// texts is the sorted history of a group.
func texts(t *testing.T, u *groupsUser, gid []byte) []string {
	t.Helper()
	p, err := u.b.Messages(context.Background(), MessagesQuery{Group: FormatKey(gid)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range p.Messages {
		out = append(out, m.Text)
	}
	sort.Strings(out)
	return out
}

// oneChat waits until a and b each list exactly one direct chat with the
// other, the same one, holding want (sorted); it returns its id.
func oneChat(t *testing.T, a, b *groupsUser, want ...string) []byte {
	t.Helper()
	var gid []byte
	pipelineWait(t, "one direct chat with every message on both sides", func() bool {
		da, db := directChats(t, a, b.id), directChats(t, b, a.id)
		if len(da) != 1 || len(db) != 1 || !bytes.Equal(da[0].ID, db[0].ID) {
			return false
		}
		gid = da[0].ID
		return slices.Equal(texts(t, a, gid), want) && slices.Equal(texts(t, b, gid), want)
	})
	return gid
}

// Both people start their direct chat at the same moment, each making a
// group and inviting the other, so that the Welcomes cross: both end in
// one conversation (the lower group id) holding the messages of both, and
// later messages go there too.
func TestDirectChatBothStartAtOnce(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	if _, _, err := alice.b.AddContact(ctx, bob.id, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.b.AddContact(ctx, alice.id, "alice"); err != nil {
		t.Fatal(err)
	}
	// Each makes its chat before either invites: the Welcomes must cross.
	ga, err := alice.b.createGroup(ctx, directName(bob.id), alice.b.cfg.GroupSuite, bob.id)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := bob.b.createGroup(ctx, directName(alice.id), bob.b.cfg.GroupSuite, alice.id)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, s := range []struct {
		u        *groupsUser
		to, text string
	}{{alice, "bob", "hi bob"}, {bob, "alice", "hi alice"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, _, err := s.u.b.SendTo(ctx, s.to, s.text, nil); err != nil {
				t.Errorf("SendTo %s: %v", s.to, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	gid := oneChat(t, alice, bob, "hi alice", "hi bob")
	keep := ga.ID
	if bytes.Compare(gb.ID, ga.ID) < 0 {
		keep = gb.ID
	}
	if !bytes.Equal(gid, keep) {
		t.Fatalf("kept %x, want the lower id of %x and %x", gid, ga.ID, gb.ID)
	}
	// Found again by both: later messages go to the same chat.
	if _, g, err := alice.b.SendTo(ctx, "bob", "again from alice", nil); err != nil || !bytes.Equal(g, gid) {
		t.Fatalf("SendTo again = %x, %v; want %x", g, err, gid)
	}
	if _, g, err := bob.b.SendTo(ctx, FormatKey(alice.id), "again from bob", nil); err != nil || !bytes.Equal(g, gid) {
		t.Fatalf("SendTo again = %x, %v; want %x", g, err, gid)
	}
	oneChat(t, alice, bob, "again from alice", "again from bob", "hi alice", "hi bob")
	// The chat stays of two.
	carol := groupsStart(t, node)
	if _, _, err := alice.b.Invite(ctx, FormatKey(gid), []ed25519.PublicKey{carol.id}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("invite into a direct chat: %v, want ErrInvalidArgument", err)
	}
}

// A third party cannot squat or pose as someone's direct chat: Carol's
// group marked direct with Alice and Bob in it is an ordinary group to
// Bob, and her two-member chat with Bob is a chat with Carol. Bob's chat
// with Alice is then a new group of the two.
func TestDirectChatNotSquattedOrImpersonated(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	// Carol marks a group as her direct chat "with Alice" and invites
	// Alice and Bob into it.
	squat, err := carol.b.createGroup(ctx, directName(alice.id), carol.b.cfg.GroupSuite, alice.id)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := carol.b.runPlan(ctx, FormatKey(squat.ID), commitPlan{kind: intentInvite, peers: []ed25519.PublicKey{alice.id, bob.id}}, 0); err != nil {
		t.Fatal(err)
	}
	// And a real direct chat of her own with Bob.
	if _, _, err := carol.b.SendTo(ctx, FormatKey(bob.id), "hi, carol here", nil); err != nil {
		t.Fatal(err)
	}
	pipelineWait(t, "bob joins carol's groups", func() bool {
		gs, _ := bob.b.Groups(ctx)
		return len(gs) == 2
	})
	if d := directChats(t, bob, alice.id); len(d) != 0 {
		t.Fatalf("carol's group is bob's direct chat with alice: %+v", d)
	}
	if d := directChats(t, bob, carol.id); len(d) != 1 || d[0].MemberCount != 2 {
		t.Fatalf("bob's direct chats with carol: %+v", d)
	}
	// Bob's chat with Alice is a new group of the two of them.
	if _, _, err := bob.b.AddContact(ctx, alice.id, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.b.AddContact(ctx, bob.id, "bob"); err != nil {
		t.Fatal(err)
	}
	_, gid, err := bob.b.SendTo(ctx, "alice", "hi alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(gid, squat.ID) {
		t.Fatal("bob's direct chat with alice is carol's group")
	}
	if got := oneChat(t, alice, bob, "hi alice"); !bytes.Equal(got, gid) {
		t.Fatalf("alice's chat %x, bob's %x", got, gid)
	}
	mr, err := alice.b.Members(ctx, FormatKey(gid))
	if err != nil || len(mr.Members) != 2 {
		t.Fatalf("members of the direct chat: %+v, %v", mr.Members, err)
	}
	for _, m := range mr.Members {
		if bytes.Equal(m.Identity, carol.id) {
			t.Fatal("carol is in alice's and bob's direct chat")
		}
	}
}

// A Welcome marked direct whose tree holds Carol, delivered by a lying node
// as sent by Alice, is no direct chat (neither with Alice nor with Carol);
// the same Welcome from Carol is the direct chat with Carol.
func TestDirectChatForgedSenderRefused(t *testing.T) {
	b, kb := receiveUser(t, testnode.Logger())
	ctx := context.Background()
	alice, _, _ := ed25519.GenerateKey(rand.Reader)
	cpub, cpriv, _ := ed25519.GenerateKey(rand.Reader)
	welcome := func(gid byte, kb KeyPackageBundle) []byte {
		t.Helper()
		g, err := mls.CreateGroup(DefaultCipherSuite, bytes.Repeat([]byte{gid}, 16),
			&mls.Signer{Credential: mls.NewBasicCredential(cpub), SignaturePub: cpub, SignaturePriv: cpriv.Seed()}, &mls.CreateOptions{Config: groupConfig, Policy: groupPolicy})
		if err != nil {
			t.Fatal(err)
		}
		kp, err := mls.ParseKeyPackage(kb.KeyPackage)
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.AddMembers([]*mls.KeyPackage{kp}, &mls.CommitOptions{WelcomeExtensions: []mls.Extension{{Type: ExtensionDirect}, {Type: ExtensionGroupName, Data: []byte("alice")}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Welcome
	}
	direct := func(p []byte) int {
		t.Helper()
		var n int
		if err := b.view(ctx, func(tx *store.Tx) error { ds, err := tx.DirectChats(p); n = len(ds); return err }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	applied, err := b.applyEnvelope(ctx, nodeclient.Envelope{Seq: 1, Sender: alice, Payload: welcome(1, kb), EnqueuedAt: time.Now(), Sequenced: true})
	if err != nil || !applied {
		evs, _ := b.EventsAfter(ctx, 0, 100)
		t.Fatalf("welcome: applied %v, %v; events %+v", applied, err, evs)
	}
	if direct(alice) != 0 || direct(cpub) != 0 {
		t.Fatalf("a forged sender made a direct chat: with alice %d, with carol %d", direct(alice), direct(cpub))
	}
	// The control: the same Welcome from Carol is the chat with Carol.
	kb2 := storeKeyPackage(t, b)
	if applied, err := b.applyEnvelope(ctx, nodeclient.Envelope{Seq: 2, Sender: cpub, Payload: welcome(2, kb2), EnqueuedAt: time.Now(), Sequenced: true}); err != nil || !applied {
		t.Fatalf("welcome from carol: applied %v, %v", applied, err)
	}
	if direct(alice) != 0 || direct(cpub) != 1 {
		t.Fatalf("direct chats: with alice %d, with carol %d; want 0, 1", direct(alice), direct(cpub))
	}
	gs, err := b.Groups(ctx)
	if err != nil || len(gs) != 2 {
		t.Fatalf("groups %+v, %v", gs, err)
	}
	for _, g := range gs {
		if g.DirectPeer != nil && (!bytes.Equal(g.DirectPeer, cpub) || g.Name != directName(cpub)) {
			t.Fatalf("direct chat %+v", g)
		}
	}
}
