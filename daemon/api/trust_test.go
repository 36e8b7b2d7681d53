package api_test

import (
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// consentDaemon is a daemon with qpd's default invitation policy.
func consentDaemon(t *testing.T, node *daemontest.Node) *client.Client {
	t.Helper()
	dir := daemontest.ShortTempDir(t)
	return daemontest.StartDaemon(t, daemontest.DaemonConfig{
		StateDir: filepath.Join(dir, "state"), Socket: filepath.Join(dir, "run", "qpd.sock"),
		NodeAddr: node.Addr, NodeCert: node.CertDER, ConsentFromContacts: true,
	}).Dial(t)
}

// nextEvent reads events until one satisfies want.
func nextEvent(t *testing.T, stream interface {
	Recv() (*daemonv1.Event, error)
}, what string, want func(*daemonv1.Event) bool) *daemonv1.Event {
	t.Helper()
	for {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if want(ev) {
			return ev
		}
	}
}

func waitRequests(t *testing.T, c *client.Client, n int) []*daemonv1.Request {
	t.Helper()
	ctx := ctxT(t)
	for deadline := time.Now().Add(20 * time.Second); ; {
		r, err := c.ListRequests(ctx, &daemonv1.ListRequestsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Requests) == n {
			return r.Requests
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests, want %d: %v", len(r.Requests), n, r.Requests)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A stranger's invitations wait in the request inbox, never as joined
// groups; decline deletes one, accept joins (and can add the inviter as a
// contact, whose next invitation joins by itself), block drops the
// blocked identity's invitations, stored and future.
func TestInvitationConsent(t *testing.T) {
	node := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	carol := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	bob := consentDaemon(t, node)
	aliceKey, bobKey, carolKey := groupsRegister(t, alice), groupsRegister(t, bob), groupsRegister(t, carol)
	ctx := ctxT(t)
	events, err := bob.Subscribe(ctx, &daemonv1.SubscribeRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	invite := func(c *client.Client, name string) string {
		t.Helper()
		g, err := c.CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Invite(ctx, &daemonv1.InviteRequest{Group: g.Group.GroupId, PeerKeys: []string{bobKey}}); err != nil {
			t.Fatal(err)
		}
		return g.Group.GroupId
	}
	g1 := invite(alice, "g1")
	ev := nextEvent(t, events, "request event", func(e *daemonv1.Event) bool { return e.GetRequest() != nil })
	if ev.GetRequest().GetInviter() != aliceKey {
		t.Fatalf("request event %v, want inviter %s", ev, aliceKey)
	}
	rs := waitRequests(t, bob, 1)
	if r := rs[0]; r.Inviter != aliceKey || r.GroupId != g1 || r.GroupName != "g1" || r.MemberCount != 2 || r.Id != ev.GetRequest().GetId() {
		t.Fatalf("request %v", r)
	}
	if j, err := bob.Join(ctx, &daemonv1.JoinRequest{Wait: durationpb.New(300 * time.Millisecond)}); err != nil || len(j.Joined) != 0 {
		t.Fatalf("join took a stranger's invitation: %v %v", j, err)
	}
	if gs, err := bob.ListGroups(ctx, &daemonv1.ListGroupsRequest{}); err != nil || len(gs.Groups) != 0 {
		t.Fatalf("bob's groups with an invitation waiting: %v %v", gs, err)
	}

	// Decline.
	if _, err := bob.DeclineRequest(ctx, &daemonv1.DeclineRequestRequest{Id: rs[0].Id}); err != nil {
		t.Fatal(err)
	}
	waitRequests(t, bob, 0)
	if _, err := bob.DeclineRequest(ctx, &daemonv1.DeclineRequestRequest{Id: rs[0].Id}); status.Code(err) != codes.NotFound {
		t.Fatalf("decline twice: %v, want NotFound", err)
	}

	// Accept, adding alice as a contact.
	g2 := invite(alice, "g2")
	rs = waitRequests(t, bob, 1)
	acc, err := bob.AcceptRequest(ctx, &daemonv1.AcceptRequestRequest{Id: rs[0].Id, ContactName: "alice"})
	if err != nil || acc.Group.GroupId != g2 || acc.Group.Name != "g2" {
		t.Fatalf("accept: %v %v", acc, err)
	}
	waitRequests(t, bob, 0)
	// Alice is a contact now: her next invitation joins by itself.
	g3 := invite(alice, "g3")
	ev = nextEvent(t, events, "joined g3", func(e *daemonv1.Event) bool { return e.GetJoined().GetGroupId() == g3 })
	if gs, err := bob.ListGroups(ctx, &daemonv1.ListGroupsRequest{}); err != nil || len(gs.Groups) != 2 {
		t.Fatalf("bob's groups: %v %v, want g2 and g3", gs, err)
	}

	// Block: carol's waiting invitation is deleted, her next one dropped.
	invite(carol, "spam")
	waitRequests(t, bob, 1)
	bl, err := bob.Block(ctx, &daemonv1.BlockRequest{Identity: carolKey})
	if err != nil || bl.RequestsDeleted != 1 {
		t.Fatalf("block: %v %v", bl, err)
	}
	waitRequests(t, bob, 0)
	invite(carol, "spam 2")
	// A message of alice's after carol's shows carol's was handled.
	if _, err := alice.Send(ctx, &daemonv1.SendRequest{Group: g3, Text: "after the spam"}); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, "alice's message", func(e *daemonv1.Event) bool { return e.GetMessage().GetText() == "after the spam" })
	waitRequests(t, bob, 0)
	cs, err := bob.ListContacts(ctx, &daemonv1.ListContactsRequest{})
	if err != nil || len(cs.Contacts) != 2 {
		t.Fatalf("contacts: %v %v", cs, err)
	}
	for _, c := range cs.Contacts {
		if (c.Identity == carolKey) != c.Blocked || (c.Identity == aliceKey && c.Name != "alice") {
			t.Errorf("contact %v", c)
		}
	}
}

var safetyDigits = regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`)

// Safety numbers match on both sides, change when a contact's key
// changes, and the change is a loud event that clears the verified mark.
func TestSafetyNumbersAndKeyChange(t *testing.T) {
	node := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	bob := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	aliceKey, bobKey := groupsRegister(t, alice), groupsRegister(t, bob)
	ctx := ctxT(t)
	if _, err := alice.AddContact(ctx, &daemonv1.AddContactRequest{Identity: bobKey, Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact(ctx, &daemonv1.AddContactRequest{Identity: aliceKey, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	sa, err := alice.SafetyNumber(ctx, &daemonv1.SafetyNumberRequest{Contact: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := bob.SafetyNumber(ctx, &daemonv1.SafetyNumberRequest{Contact: aliceKey})
	if err != nil {
		t.Fatal(err)
	}
	if sa.Digits != sb.Digits || string(sa.QrPayload) != string(sb.QrPayload) || !safetyDigits.MatchString(sa.Digits) {
		t.Fatalf("safety numbers %q and %q, want the same 60 digits", sa.Digits, sb.Digits)
	}
	if again, err := alice.SafetyNumber(ctx, &daemonv1.SafetyNumberRequest{Contact: bobKey}); err != nil || again.Digits != sa.Digits {
		t.Fatalf("safety number not stable: %q %v", again.GetDigits(), err)
	}
	v, err := alice.Verify(ctx, &daemonv1.VerifyRequest{Contact: "bob", Verified: true})
	if err != nil || !v.Contact.Verified || v.Contact.VerifiedAt == nil {
		t.Fatalf("verify: %v %v", v, err)
	}
	events, err := alice.Subscribe(ctx, &daemonv1.SubscribeRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}

	// "bob" comes back with a new key (a new installation).
	bob2 := nodeDaemon(t, daemontest.ShortTempDir(t), node.Addr, node.CertDER).Dial(t)
	bob2Key := groupsRegister(t, bob2)
	add, err := alice.AddContact(ctx, &daemonv1.AddContactRequest{Identity: bob2Key, Name: "bob"})
	if err != nil || add.ReplacedIdentity != bobKey || add.Contact.Verified {
		t.Fatalf("add bob's new key: %v %v", add, err)
	}
	ev := nextEvent(t, events, "key change", func(e *daemonv1.Event) bool { return e.GetContactKeyChanged() != nil })
	if k := ev.GetContactKeyChanged(); k.Name != "bob" || k.OldIdentity != bobKey || k.NewIdentity != bob2Key {
		t.Fatalf("key change event %v", ev)
	}
	s2, err := alice.SafetyNumber(ctx, &daemonv1.SafetyNumberRequest{Contact: "bob"})
	if err != nil || s2.Digits == sa.Digits || s2.Contact.Verified {
		t.Fatalf("safety number after the key change: %v %v", s2, err)
	}
	if _, err := alice.SafetyNumber(ctx, &daemonv1.SafetyNumberRequest{Contact: "nobody"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown contact: %v, want NotFound", err)
	}
}
