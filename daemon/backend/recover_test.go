package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// offendedGroup has three daemons form group name, and alice invite
// mallory, a raw client, until every daemon sees it.
func offendedGroup(t *testing.T, node *testnode.Node, name string) (alice, bob, carol *groupsUser, gid string, mallory *grouptest.Member) {
	t.Helper()
	alice, bob, carol = groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	_, gid = groupsForm(t, name, alice, bob, carol)
	mallory = hostileMember(t, node, alice, gid)
	for _, u := range []*groupsUser{bob, carol} {
		groupsWait(t, "the members see mallory", func() bool {
			m, err := u.b.Members(context.Background(), gid)
			return err == nil && len(m.Members) == 4
		})
	}
	return alice, bob, carol, gid, mallory
}

// eventOf waits until u has an event matching ok and returns it.
func eventOf(t *testing.T, u *groupsUser, what string, ok func(Event) bool) Event {
	t.Helper()
	var got Event
	groupsWait(t, what, func() bool {
		evs, err := u.b.EventsAfter(context.Background(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(evs, ok)
		if i >= 0 {
			got = evs[i]
		}
		return i >= 0
	})
	return got
}

// memberKeys lists a user's view of a group's member identities.
func memberKeys(t *testing.T, u *groupsUser, group string) (MembersResult, [][]byte) {
	t.Helper()
	m, err := u.b.Members(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]byte
	for _, x := range m.Members {
		ids = append(ids, x.Identity)
	}
	return m, ids
}

// A member (a raw client built from our own packages) has the node accept
// a validly signed commit with corrupted path ciphertexts. Every honest
// daemon names it, and all of them end, with no command, in one successor
// group without it, under the same name and history. The leader (alice,
// the lowest leaf) is offline meanwhile: the others wait for it, and what
// bob sends while the group is stuck goes out in the successor. Messages
// sent after the recovery reach everyone, and the offender gets nothing of
// the successor.
func TestHostileMemberGarbagePathRecovered(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	ctx := context.Background()
	const name = "recovered"
	alice, bob, carol, gid, mallory := offendedGroup(t, node, name)
	if _, err := carol.b.Send(ctx, name, "before the attack", nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*groupsUser{alice, bob} {
		groupsWait(t, "the message before the attack", func() bool { return slices.Contains(groupsTexts(t, u, name), "before the attack") })
	}
	aliceStore := alice.b.cfg.Store
	alice.stop()

	if _, err := mallory.Conn.SubmitCommit(ctx, nodeclient.CommitRequest{Message: grouptest.GarbagePathCommit(t, mallory, groupConfig)}); err != nil {
		t.Fatalf("the node refused the commit it cannot check: %v", err)
	}
	for _, u := range []*groupsUser{bob, carol} {
		eventOf(t, u, "the broken commit named", func(e Event) bool {
			return e.Kind == store.EventRejected && strings.Contains(e.Detail, "signed by "+FormatKey(mallory.Pub))
		})
		eventOf(t, u, "the recovery started", func(e Event) bool {
			return e.Kind == store.EventRecovery && FormatKey(e.GroupID) == gid && bytes.Equal(e.By, mallory.Pub) && bytes.Equal(e.Member, alice.id)
		})
	}
	// The offender's message of a later epoch of the old group makes the
	// waiting members ask the others for a GroupInfo, but not the
	// offender: only it could answer with the state it broke.
	m, _ := memberKeys(t, bob, gid)
	g := mallory.Group.GroupID()
	later := append([]byte{0, 1, 0, 2, byte(len(g))}, g...)
	later = append(append(binary.BigEndian.AppendUint64(later, m.Epoch+1), 1, 0, 1, 0), 1, 0)
	if _, _, err := mallory.Conn.FanOut(ctx, []byte("later"), later); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*groupsUser{bob, carol} {
		groupsWait(t, "the later message rejected", func() bool {
			evs, err := u.b.EventsAfter(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range evs {
				if e.Kind == store.EventRejected && bytes.Equal(e.By, mallory.Pub) {
					n++
				}
			}
			return n == 2
		})
		u.b.gmu.Lock()
		asked := slices.Clone(u.b.rejoin.from[string(g)])
		u.b.gmu.Unlock()
		if len(asked) != 2 || slices.ContainsFunc(asked, func(k []byte) bool { return bytes.Equal(k, mallory.Pub) }) {
			t.Fatalf("a member under recovery asked %d members for a GroupInfo, or the offender", len(asked))
		}
	}
	// Stuck, with the leader offline: bob's message waits.
	sent, err := bob.b.Send(ctx, name, "while stuck", nil)
	if err != nil {
		t.Fatal(err)
	}

	alice = groupsStartOn(t, node, Config{}, aliceStore)
	var successor []byte
	for _, u := range []*groupsUser{alice, bob, carol} {
		e := eventOf(t, u, "the group recovered", func(e Event) bool { return e.Kind == store.EventRecovered })
		if e.State != gid || !bytes.Equal(e.By, mallory.Pub) || !bytes.Equal(e.Member, alice.id) {
			t.Fatalf("recovered event %+v", e)
		}
		if successor == nil {
			successor = e.GroupID
		} else if !bytes.Equal(successor, e.GroupID) {
			t.Fatalf("members recovered into different groups %x and %x", successor, e.GroupID)
		}
	}
	var auth []byte
	for _, u := range []*groupsUser{alice, bob, carol} {
		m, ids := memberKeys(t, u, name)
		if !bytes.Equal(m.Group.ID, successor) || !sameKeySet(ids, [][]byte{alice.id, bob.id, carol.id}) {
			t.Fatalf("%q after the recovery: group %x with %d members", name, m.Group.ID, len(ids))
		}
		if auth == nil {
			auth = m.EpochAuthenticator
		} else if !bytes.Equal(auth, m.EpochAuthenticator) {
			t.Fatal("the members of the successor do not share its state")
		}
		if !slices.Contains(groupsTexts(t, u, name), "before the attack") {
			t.Fatal("the history did not move to the successor")
		}
	}
	var it store.OutboxItem
	if err := bob.b.view(ctx, func(tx *store.Tx) (err error) { it, err = tx.Outbox(sent.OutboxID); return }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(it.GroupID, successor) {
		t.Fatalf("the message sent while stuck went out in group %x, not the successor", it.GroupID)
	}
	for _, u := range []*groupsUser{alice, carol} {
		groupsWait(t, "the message sent while stuck", func() bool { return slices.Contains(groupsTexts(t, u, name), "while stuck") })
	}
	// After the recovery, everyone's messages reach everyone.
	users := []*groupsUser{alice, bob, carol}
	for i, u := range users {
		if _, err := u.b.Send(ctx, name, "after "+FormatKey(u.id)[:8], nil); err != nil {
			t.Fatal(err)
		}
		for j, v := range users {
			if i != j {
				groupsWait(t, "a message after the recovery", func() bool { return slices.Contains(groupsTexts(t, v, name), "after "+FormatKey(u.id)[:8]) })
			}
		}
	}
	// The offender received nothing of the successor.
	envs, err := mallory.Conn.Receive(ctx, mallory.Pub, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		if h, err := mls.PeekMessage(e.Payload); err == nil && (h.WireFormat == mls.WireFormatWelcome || bytes.Equal(h.GroupID, successor)) {
			t.Fatalf("the offender got a %v of the successor", h.WireFormat)
		}
		if bytes.HasPrefix(e.Payload, controlMagic) {
			t.Fatalf("the offender got a control message from %x", e.Sender)
		}
	}
}

// The node accepts the leader's successor commit but its reply is lost
// (the node stops before answering): the leader, which stored the
// successor and its commit first, resubmits it on the next connection and
// finishes the same recovery the others joined, rather than making a
// second successor they would refuse.
func TestRecoveryLeaderReplyLost(t *testing.T) {
	dir := t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	ctx := context.Background()
	const name = "reply lost"
	alice, bob, carol, _, mallory := offendedGroup(t, node, name)
	var once sync.Once
	alice.b.beforeSubmit = func() {
		once.Do(func() {
			// The commit reaches the node (through another connection of
			// alice's), then the node stops before alice hears of it.
			var it store.OutboxItem
			var id store.Identity
			if err := alice.b.view(ctx, func(tx *store.Tx) error {
				cs, err := tx.PendingCommits()
				if err != nil || len(cs) != 1 {
					return fmt.Errorf("pending commits %d: %v", len(cs), err)
				}
				it = cs[0]
				id, err = tx.Identity()
				return err
			}); err != nil {
				t.Error(err)
				return
			}
			c := pipelinePeer(t, node, id.PrivateKey)
			if _, err := c.SubmitCommit(ctx, nodeclient.CommitRequest{ClientMsgID: it.ClientMsgID, Message: it.Payload, Welcome: it.Welcome}); err != nil {
				t.Errorf("the successor's commit: %v", err)
			}
			node.Stop()
		})
	}
	if _, err := mallory.Conn.SubmitCommit(ctx, nodeclient.CommitRequest{Message: grouptest.GarbagePathCommit(t, mallory, groupConfig)}); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "the node stopped before its reply", func() bool {
		st, err := alice.b.Status(ctx)
		return err == nil && st.Node.State != StateConnected
	})
	node = testnode.StartNode(t, dir, node.Addr)
	var successor []byte
	for _, u := range []*groupsUser{alice, bob, carol} {
		e := eventOf(t, u, "the group recovered", func(e Event) bool { return e.Kind == store.EventRecovered })
		if successor == nil {
			successor = e.GroupID
		} else if !bytes.Equal(successor, e.GroupID) {
			t.Fatalf("members recovered into different groups %x and %x", successor, e.GroupID)
		}
	}
	if _, err := carol.b.Send(ctx, name, "after the lost reply", nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*groupsUser{alice, bob} {
		groupsWait(t, "the message after the lost reply", func() bool { return slices.Contains(groupsTexts(t, u, name), "after the lost reply") })
	}
}

// A recovery Welcome is taken only from the leader each member computed
// and only with exactly the roster it computed: here the leader (lena, the
// group's creator, the lowest leaf) is a hostile raw client, and so is the
// offender. A successor that drops carol, one that adds an outsider, and
// the right roster sent by the offender are all refused, with events, and
// change nothing; the right one from lena is joined.
func TestForgedRecoveryWelcomeRefused(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	bob, carol := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	lena, mallory, oscar := grouptest.NewMember(t), grouptest.NewMember(t), grouptest.NewMember(t)
	for _, m := range []*grouptest.Member{lena, mallory, oscar} {
		m.Conn = pipelinePeer(t, node, m.Priv)
	}
	// lena creates the group and adds bob, carol and mallory.
	g, err := mls.CreateGroup(DefaultCipherSuite, nil, lena.Signer, &mls.CreateOptions{Config: groupConfig})
	if err != nil {
		t.Fatal(err)
	}
	lena.Group = g
	gi, err := g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	if err := lena.Conn.CreateGroup(ctx, gi); err != nil {
		t.Fatal(err)
	}
	mkp, mpriv, err := mls.GenerateKeyPackage(DefaultCipherSuite, mallory.Signer, &mls.KeyPackageParams{ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	kps := append(fetchKPs(t, lena, bob.id, carol.id), mkp)
	res, err := g.AddMembers(kps, &mls.CommitOptions{WelcomeExtensions: []mls.Extension{{Type: ExtensionGroupName, Data: []byte("forged")}}})
	if err != nil {
		t.Fatal(err)
	}
	lena.Submit(t, res)
	w := hostileNext(t, mallory, "the Welcome")
	if mallory.Group, err = mls.JoinFromWelcome(w.Payload, mpriv, &mls.JoinOptions{Config: groupConfig}); err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.GroupID())
	for _, u := range []*groupsUser{bob, carol} {
		groupsWait(t, "joined lena's group", func() bool {
			m, err := u.b.Members(ctx, gid)
			return err == nil && len(m.Members) == 4
		})
	}
	if _, err := mallory.Conn.SubmitCommit(ctx, nodeclient.CommitRequest{Message: grouptest.GarbagePathCommit(t, mallory, groupConfig)}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*groupsUser{bob, carol} {
		eventOf(t, u, "the recovery led by lena", func(e Event) bool {
			return e.Kind == store.EventRecovery && bytes.Equal(e.Member, lena.Pub) && bytes.Equal(e.By, mallory.Pub)
		})
	}
	link := successorLink{old: g.GroupID(), epoch: g.Epoch(), offender: mallory.Pub}
	// successor has from create a group, add peers, and submit the commit
	// with a recovery Welcome.
	successor := func(from *grouptest.Member, peers ...ed25519.PublicKey) {
		t.Helper()
		sg, err := mls.CreateGroup(DefaultCipherSuite, nil, from.Signer, &mls.CreateOptions{Config: groupConfig})
		if err != nil {
			t.Fatal(err)
		}
		gi, err := sg.GroupInfo()
		if err != nil {
			t.Fatal(err)
		}
		if err := from.Conn.CreateGroup(ctx, gi); err != nil {
			t.Fatal(err)
		}
		var kps []*mls.KeyPackage
		for _, p := range peers {
			if bytes.Equal(p, oscar.Pub) {
				kp, _, err := mls.GenerateKeyPackage(DefaultCipherSuite, oscar.Signer, nil)
				if err != nil {
					t.Fatal(err)
				}
				kps = append(kps, kp)
				continue
			}
			kps = append(kps, fetchKPs(t, from, p)...)
		}
		res, err := sg.AddMembers(kps, &mls.CommitOptions{WelcomeExtensions: []mls.Extension{
			{Type: ExtensionGroupName, Data: []byte("forged")}, {Type: ExtensionSuccessor, Data: link.encode()}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := from.Conn.SubmitCommit(ctx, nodeclient.CommitRequest{Message: res.Message, Welcome: res.Welcome}); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(u *groupsUser, why string) {
		t.Helper()
		eventOf(t, u, "refused: "+why, func(e Event) bool { return e.Kind == store.EventRefused && strings.Contains(e.Detail, why) })
	}
	successor(lena, bob.id) // carol dropped
	refused(bob, "not exactly the 3 members")
	successor(lena, bob.id, carol.id, oscar.Pub) // an outsider pulled in
	refused(bob, "has 4 members")
	refused(carol, "has 4 members")
	successor(mallory, bob.id, carol.id) // the offender as leader
	refused(bob, "is led by "+FormatKey(lena.Pub))
	refused(carol, "is led by "+FormatKey(lena.Pub))
	for _, u := range []*groupsUser{bob, carol} {
		if m, _ := memberKeys(t, u, "forged"); !bytes.Equal(m.Group.ID, g.GroupID()) {
			t.Fatalf("after the forged Welcomes %q is group %x", "forged", m.Group.ID)
		}
	}
	// The recovery lena computed as well is joined.
	successor(lena, bob.id, carol.id)
	for _, u := range []*groupsUser{bob, carol} {
		e := eventOf(t, u, "recovered", func(e Event) bool { return e.Kind == store.EventRecovered })
		if m, ids := memberKeys(t, u, "forged"); !bytes.Equal(m.Group.ID, e.GroupID) || !sameKeySet(ids, [][]byte{lena.Pub, bob.id, carol.id}) {
			t.Fatalf("after lena's recovery: group %x, %d members", m.Group.ID, len(ids))
		}
	}
}

// fetchKPs fetches the peers' KeyPackages from the node through m.
func fetchKPs(t *testing.T, m *grouptest.Member, peers ...ed25519.PublicKey) []*mls.KeyPackage {
	t.Helper()
	var out []*mls.KeyPackage
	for _, p := range peers {
		raw, err := m.Conn.FetchKeyPackageSuite(context.Background(), p, uint16(DefaultCipherSuite))
		if err != nil {
			t.Fatal(err)
		}
		kp, err := mls.ParseKeyPackage(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kp)
	}
	return out
}

// The successor extension decodes only at its exact size, and what
// decodes encodes back to the same bytes.
func FuzzDecodeSuccessorLink(f *testing.F) {
	f.Add(successorLink{old: bytes.Repeat([]byte{1}, store.GroupIDSize), epoch: 7, offender: bytes.Repeat([]byte{2}, 32)}.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := decodeSuccessorLink(b)
		if err != nil {
			if !errors.Is(err, ErrRecoveryRefused) || len(b) == successorSize {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		if !bytes.Equal(l.encode(), b) {
			t.Fatal("the link does not encode back to its bytes")
		}
	})
}
