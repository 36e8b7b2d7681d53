package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// This file tests a person with two devices against a real node and real
// daemons. The second device is made by hand here (its certificate issued
// by the first, the device list published at the node); the link
// protocol is tested with its own code.

// forgingStore is a node that hands out, for one device, a KeyPackage it
// made itself.
type forgingStore struct {
	nodestore.Store
	mu     sync.Mutex
	victim []byte
	fake   []byte
}

func (s *forgingStore) TakeKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	s.mu.Lock()
	victim, fake := s.victim, s.fake
	s.mu.Unlock()
	if victim != nil && bytes.Equal(identity, victim) {
		return fake, nil
	}
	return s.Store.TakeKeyPackage(ctx, identity)
}

// linkByHand makes a second device of primary's person: a device key
// certified by the user key, the device list {U, D} published at the
// node, and a daemon on the new device's state (cfg as groupsStartOn).
func linkByHand(t *testing.T, node *testnode.Node, primary *groupsUser, setup ...func(*Backend)) (*groupsUser, ed25519.PublicKey) {
	t.Helper()
	return linkByHandNamed(t, node, primary, "second", setup...)
}

// linkByHandNamed is linkByHand with the device's label.
func linkByHandNamed(t *testing.T, node *testnode.Node, primary *groupsUser, label string, setup ...func(*Backend)) (*groupsUser, ed25519.PublicKey) {
	t.Helper()
	ctx := context.Background()
	dev, devPriv := newEd25519(t)
	chain, err := primary.b.IssueDevice(ctx, dev, label)
	if err != nil {
		t.Fatal(err)
	}
	u, err := primary.b.UserIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Wipe()
	list := &devid.DeviceList{User: u.PublicKey(), Version: 1, Devices: []ed25519.PublicKey{u.PublicKey(), dev}, Created: time.Now()}
	raw, err := list.Sign(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := primary.b.client().PublishDevices(ctx, raw); err != nil {
		t.Fatalf("publish devices: %v", err)
	}
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	link := func(b *Backend) {
		if err := b.SetLinkedIdentity(ctx, u.PublicKey(), devPriv, chain, nil); err != nil {
			t.Fatal(err)
		}
	}
	second := groupsStartOn(t, node, Config{}, st, append([]func(*Backend){link}, setup...)...)
	if !second.id.Equal(primary.id) {
		t.Fatalf("second device registers as %x, want the person %x", second.id, primary.id)
	}
	return second, dev
}

func joinOne(t *testing.T, u *groupsUser, what string) {
	t.Helper()
	if j, err := u.b.Join(context.Background(), 10*time.Second); err != nil || len(j) != 1 {
		t.Fatalf("%s: joined %v, %v", what, j, err)
	}
}

// senders returns the sender and text of each message u has of group.
func senders(t *testing.T, u *groupsUser, group string) map[string][]byte {
	t.Helper()
	p, err := u.b.Messages(context.Background(), MessagesQuery{Group: group, Limit: store.MaxMessageQuery})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range p.Messages {
		out[m.Text] = m.Sender
	}
	return out
}

// TestTwoDevicesOnePerson: Bob invites alice, and both of alice's devices
// join; Bob sees one person with two devices, and the messages of either
// device as alice's; each alice device shows the other's messages as its
// own. A group alice makes takes in her other device, which joins without
// asking even though it takes only contacts' invitations; a device later
// added to a group she is in is an event at Bob naming the device.
func TestTwoDevicesOnePerson(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	contactsOnly := func(b *Backend) { b.cfg.Invitations = InviteContacts }
	alice2, dev := linkByHand(t, node, alice, contactsOnly)
	ctx := context.Background()

	// Bob invites the person.
	g, err := bob.b.CreateGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	if _, added, err := bob.b.Invite(ctx, gid, []ed25519.PublicKey{alice.id}); err != nil || len(added) != 1 || !added[0].Equal(alice.id) {
		t.Fatalf("invite alice: added %x, %v", added, err)
	}
	joinOne(t, alice, "alice joins")
	// alice2 takes only contacts' Welcomes: Bob's waits for consent.
	var reqs []Request
	groupsWait(t, "bob's invitation waits at alice's second device", func() bool {
		reqs, err = alice2.b.Requests(ctx)
		return err == nil && len(reqs) == 1
	})
	if !bytes.Equal(reqs[0].Inviter, bob.id) || reqs[0].Members != 2 {
		t.Fatalf("request from %x with %d people, want bob's with 2", reqs[0].Inviter, reqs[0].Members)
	}
	if _, err := alice2.b.AcceptRequest(ctx, reqs[0].ID, ""); err != nil {
		t.Fatal(err)
	}

	m, err := bob.b.Members(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 3 || len(m.People) != 2 {
		t.Fatalf("bob sees %d leaves and %d people, want 3 and 2", len(m.Members), len(m.People))
	}
	var ap *Person
	for i := range m.People {
		if m.People[i].User.Equal(alice.id) {
			ap = &m.People[i]
		}
	}
	if ap == nil || len(ap.Devices) != 2 || ap.Self {
		t.Fatalf("alice at bob's: %+v", ap)
	}
	keys := [][]byte{ap.Devices[0].SignatureKey, ap.Devices[1].SignatureKey}
	if !(bytes.Equal(keys[0], alice.id) && bytes.Equal(keys[1], dev)) && !(bytes.Equal(keys[1], alice.id) && bytes.Equal(keys[0], dev)) {
		t.Fatalf("alice's devices at bob's: %x", keys)
	}
	evs, err := bob.b.EventsAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	for _, e := range evs {
		if e.Kind == store.EventMemberAdded && bytes.Equal(e.GroupID, g.ID) {
			added++
			if !bytes.Equal(e.Member, alice.id) || e.State != "" {
				t.Fatalf("bob's member event %+v, want alice the person", e)
			}
		}
	}
	if added != 1 {
		t.Fatalf("bob has %d member-added events for alice's two devices, want 1", added)
	}

	// Messages of either device are alice's.
	for _, s := range []struct {
		u    *groupsUser
		text string
	}{{alice, "from the first"}, {alice2, "from the second"}, {bob, "from bob"}} {
		if _, err := s.u.b.Send(ctx, gid, s.text, nil); err != nil {
			t.Fatalf("send %q: %v", s.text, err)
		}
	}
	for _, u := range []*groupsUser{alice, alice2, bob} {
		groupsWait(t, "three messages everywhere", func() bool { return len(groupsTexts(t, u, gid)) == 3 })
		got := senders(t, u, gid)
		if !bytes.Equal(got["from the first"], alice.id) || !bytes.Equal(got["from the second"], alice.id) || !bytes.Equal(got["from bob"], bob.id) {
			t.Fatalf("senders %x", got)
		}
	}
	p, err := alice.b.Messages(ctx, MessagesQuery{Group: gid, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range p.Messages {
		if msg.Text == "from the second" && !msg.Outgoing {
			t.Fatal("alice's first device shows her second device's message as someone else's")
		}
	}

	// A group alice makes takes in her second device at once, without
	// asking it.
	own, err := alice.b.CreateGroup(ctx, "mine")
	if err != nil {
		t.Fatal(err)
	}
	joinOne(t, alice2, "alice's second device joins her new group")
	om, err := alice2.b.Members(ctx, FormatKey(own.ID))
	if err != nil || len(om.People) != 1 || len(om.Members) != 2 || !om.People[0].Self {
		t.Fatalf("alice's own group at her second device: %+v %v", om.People, err)
	}

	// Direct chats stay of two people, whatever their devices.
	if _, _, err := bob.b.SendTo(ctx, FormatKey(alice.id), "direct", nil); err != nil {
		t.Fatal(err)
	}
	joinOne(t, alice, "alice joins the direct chat")
	groupsWait(t, "alice's second device in the direct chat", func() bool {
		gs, err := alice2.b.Groups(ctx)
		if err != nil {
			return false
		}
		for _, gi := range gs {
			if gi.DirectPeer != nil && bytes.Equal(gi.DirectPeer, bob.id) {
				return true
			}
		}
		// It is a request at the second device (bob is no contact).
		if rs, err := alice2.b.Requests(ctx); err == nil && len(rs) == 1 {
			_, _ = alice2.b.AcceptRequest(ctx, rs[0].ID, "")
		}
		return false
	})
}

// TestForgedDeviceRefused: a node that hands out, for a listed device of
// alice, a KeyPackage whose device certificate alice's identity key did
// not issue (under alice's own user certificate) cannot get its device
// into Bob's group: the invitation is refused and recorded, and nothing
// is committed.
func TestForgedDeviceRefused(t *testing.T) {
	forge := &forgingStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		forge.Store = st
		return forge
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	alice2, dev := linkByHand(t, node, alice)
	ctx := context.Background()

	id2, err := alice2.b.identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	userCert := id2.Chain[1]
	forger, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mpub, mpriv := newEd25519(t)
	forged, err := forger.IssueDevice(mpub, "not alice's", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The forger's device certificate under alice's user certificate.
	s, err := devid.Signer([][]byte{forged[0], userCert}, mpriv)
	if err != nil {
		t.Fatal(err)
	}
	fake, _, err := mls.GenerateKeyPackage(DefaultCipherSuite, s, &mls.KeyPackageParams{ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	forge.mu.Lock()
	forge.victim, forge.fake = dev, fake.Marshal()
	forge.mu.Unlock()

	g, err := bob.b.CreateGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	_, _, err = bob.b.Invite(ctx, gid, []ed25519.PublicKey{alice.id})
	if !errors.Is(err, ErrIdentityMismatch) || !errors.Is(err, devid.ErrNotIssuedByUser) {
		t.Fatalf("invite with a forged device: %v, want ErrIdentityMismatch and devid.ErrNotIssuedByUser", err)
	}
	m, err := bob.b.Members(ctx, gid)
	if err != nil || len(m.Members) != 1 || m.Epoch != 0 {
		t.Fatalf("group after the refused invite: %d members at epoch %d, %v", len(m.Members), m.Epoch, err)
	}
	evs, err := bob.b.EventsAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if e.Kind == store.EventRefused && bytes.Equal(e.Member, alice.id) && strings.Contains(e.Detail, "not issued") {
			found = true
		}
	}
	if !found {
		t.Fatal("no refusal event for the forged device")
	}

	// The honest node again: both devices join.
	forge.mu.Lock()
	forge.victim = nil
	forge.mu.Unlock()
	if _, _, err := bob.b.Invite(ctx, gid, []ed25519.PublicKey{alice.id}); err != nil {
		t.Fatal(err)
	}
	joinOne(t, alice, "alice")
	joinOne(t, alice2, "alice's second device")
	if m, err := bob.b.Members(ctx, gid); err != nil || len(m.Members) != 3 || len(m.People) != 2 {
		t.Fatalf("after the honest invite: %d leaves, %d people, %v", len(m.Members), len(m.People), err)
	}
}

// TestPreviousSchemaIdentityKeepsWorking (acceptance 5: kept working, not
// migrated): a state made before device keys (schema version 9, one key
// that is user and device) opens with this version, keeps its key and
// basic credential, and talks with a current daemon through a real node;
// and a person with a linked device can invite it.
func TestPreviousSchemaIdentityKeepsWorking(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	old, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := old.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE messages DROP COLUMN sender_device",
		"ALTER TABLE messages DROP COLUMN sender_device_name",
		"ALTER TABLE identity DROP COLUMN user_key",
		"ALTER TABLE identity DROP COLUMN user_seed",
		"ALTER TABLE identity DROP COLUMN device_cert",
		"ALTER TABLE identity DROP COLUMN user_cert",
		"ALTER TABLE outbox DROP COLUMN fan_out",
		"ALTER TABLE groups DROP COLUMN ratchets",
		"ALTER TABLE groups DROP COLUMN state_tag",
		"PRAGMA user_version = 9",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	st, err = store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	carol := groupsStartOn(t, node, Config{}, st)
	if !carol.id.Equal(reg.Identity) {
		t.Fatalf("identity after the upgrade %x, before %x", carol.id, reg.Identity)
	}
	id, err := carol.b.identity(ctx)
	if err != nil || !id.SingleDevice() || !id.Primary() {
		t.Fatalf("old identity: single %v primary %v, %v", id.SingleDevice(), id.Primary(), err)
	}

	alice := groupsStart(t, node)
	alice2, _ := linkByHand(t, node, alice)
	_, gid := groupsForm(t, "old and new", carol, alice)
	joinOne(t, alice2, "alice's second device joins carol's group")
	if _, err := carol.b.Send(ctx, gid, "still here", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice2.b.Send(ctx, gid, "me too", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "both messages at carol's", func() bool { return len(groupsTexts(t, carol, gid)) == 2 })
	if got := senders(t, carol, gid); !bytes.Equal(got["me too"], alice.id) {
		t.Fatalf("carol sees the second device's message from %x, want alice %x", got["me too"], []byte(alice.id))
	}
	m, err := carol.b.Members(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Members {
		if bytes.Equal(l.SignatureKey, carol.id) && l.Credential.Type != mls.CredentialBasic {
			t.Fatalf("carol's leaf has credential type %v, want basic", l.Credential.Type)
		}
	}
}

// TestContactDeviceEvents: alice's second device added to a group she is
// in, and removed again, are events at Bob that name the device, with
// alice still a member; her messages still show as hers.
func TestContactDeviceEvents(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	g, gid := groupsForm(t, "team", bob, alice)
	alice2, dev := linkByHand(t, node, alice)

	// Alice's first device adds her second to the group.
	if _, _, err := alice.b.runPlan(ctx, gid, commitPlan{kind: intentOwnDevices}, 0); err != nil {
		t.Fatal(err)
	}
	joinOne(t, alice2, "alice's second device")
	deviceEvent := func(kind store.EventKind) bool {
		evs, err := bob.b.EventsAfter(ctx, 0, 1000)
		if err != nil {
			return false
		}
		for _, e := range evs {
			if e.Kind == kind && bytes.Equal(e.GroupID, g.ID) && e.State == store.MemberDevice {
				if !bytes.Equal(e.Member, alice.id) || !bytes.Equal(e.By, alice.id) || e.Detail != FormatKey(dev) {
					t.Fatalf("device event %+v", e)
				}
				return true
			}
		}
		return false
	}
	groupsWait(t, "bob sees alice link a device", func() bool { return deviceEvent(store.EventMemberAdded) })
	if m, err := bob.b.Members(ctx, gid); err != nil || len(m.People) != 2 || len(m.Members) != 3 {
		t.Fatalf("bob's members: %d people, %d leaves, %v", len(m.People), len(m.Members), err)
	}

	// And removes it (what revoking a device does in each group).
	plan, err := commitPlan{kind: intentUpdate}.encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.b.runCommit(ctx, gid, plan, 0, func(ctx context.Context, _ *nodeclient.Client, mg *mls.Group, _ []byte) (*mls.CommitResult, [][]byte, error) {
		m, ok := memberByDevice(mg, dev)
		if !ok {
			return nil, nil, errors.New("second device not in the group")
		}
		res, err := mg.RemoveMembers([]mls.LeafIndex{m.Leaf}, nil)
		return res, nil, err
	}); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob sees alice remove a device", func() bool { return deviceEvent(store.EventMemberRemoved) })
	m, err := bob.b.Members(ctx, gid)
	if err != nil || len(m.People) != 2 || len(m.Members) != 2 {
		t.Fatalf("bob's members after the removal: %d people, %d leaves, %v", len(m.People), len(m.Members), err)
	}
	if _, err := alice.b.Send(ctx, gid, "one device again", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob reads alice", func() bool { return bytes.Equal(senders(t, bob, gid)["one device again"], alice.id) })
}

// TestBlockedPersonsDevices: blocking a person drops the messages of
// every device of the person, the linked ones (whose keys are not the
// blocked one) included.
func TestBlockedPersonsDevices(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	alice2, _ := linkByHand(t, node, alice)
	ctx := context.Background()
	_, gid := groupsForm(t, "three", bob, alice, carol)
	joinOne(t, alice2, "alice's second device")
	if _, err := bob.b.Block(ctx, alice.id); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		u    *groupsUser
		text string
	}{{alice2, "from the linked device"}, {carol, "from carol"}} {
		if _, err := s.u.b.Send(ctx, gid, s.text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "carol's message at bob's", func() bool { return senders(t, bob, gid)["from carol"] != nil })
	if got := senders(t, bob, gid); got["from the linked device"] != nil {
		t.Fatalf("bob keeps a blocked person's linked device's message: %x", got)
	}
}
