package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// twoPeople starts a node and two daemons, registers both, and puts them
// in a group "team" created by Alice. bobBeforeInvite runs between the
// registrations and the invitation.
func twoPeople(t *testing.T, bobBeforeInvite func(bob *user)) (n *node, alice, bob *user, group string) {
	t.Helper()
	root := tempDir(t)
	n = startNode(t, root, "127.0.0.1:0")
	alice, bob = newUser(t, root, "alice", n.addr), newUser(t, root, "bob", n.addr)
	alice.register(t)
	bob.register(t)
	if bobBeforeInvite != nil {
		bobBeforeInvite(bob)
	}
	group = alice.createGroup(t, "team")
	out := alice.must(t, "invite", "--group-id", "team", "--peer-key", bob.id, "--json")
	if !contains(out, bob.id) {
		t.Fatalf("invite: %s", out)
	}
	bob.join(t, group, "team")
	return n, alice, bob, group
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }

func checkMessage(t *testing.T, m messageJSON, group, sender, text string) {
	t.Helper()
	if m.GroupID != group || m.Sender != sender || m.Text != text || m.Seq == 0 || m.SentAt == "" || m.Outgoing {
		t.Fatalf("message %+v, want group %s sender %s text %q", m, group, sender, text)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.SentAt); err != nil {
		t.Fatalf("sent_at %q: %v", m.SentAt, err)
	}
}

// (a) Two people talk both ways through a node.
func TestConversation(t *testing.T) {
	_, alice, bob, group := twoPeople(t, nil)
	alice.must(t, "send", "--group-id", "team", "--msg", "hi bob")
	got := bob.recvUntil(t, group, 1)
	checkMessage(t, got[0], group, alice.id, "hi bob")
	bob.must(t, "send", "--group-id", group, "--msg", "hi alice")
	got = alice.recvUntil(t, group, 1)
	checkMessage(t, got[0], group, bob.id, "hi alice")

	// Both see the same members, epoch and epoch authenticator.
	ma, mb := alice.members(t, group), bob.members(t, group)
	if len(ma) != 2 || len(mb) != 2 || ma[0].Epoch != 1 || ma[0].EpochAuthenticator == "" || ma[0].EpochAuthenticator != mb[0].EpochAuthenticator {
		t.Fatalf("members: alice %+v bob %+v", ma, mb)
	}
	// Read messages are not shown again.
	if r := bob.must(t, "recv", "--group-id", group, "--json"); r != "" {
		t.Fatalf("second recv: %q", r)
	}
	// Both rotate their keys; then Bob leaves (Alice commits his own
	// Remove proposal).
	alice.must(t, "update")
	bob.must(t, "update", "--group-id", group)
	bob.must(t, "leave", "--group-id", group)
	if r := bob.must(t, "groups", "--json"); r != "" {
		t.Fatalf("bob's groups after leaving: %q", r)
	}
	waitFor(t, "alice alone in the group", func() bool {
		ms := alice.members(t, group)
		return len(ms) == 1 && ms[0].Self && ms[0].Epoch == 4
	})
}

// (b) Bob's daemon restarts between registering and being invited: the
// KeyPackage private halves survived, and he joins.
func TestJoinAfterRestart(t *testing.T) {
	_, alice, bob, group := twoPeople(t, func(bob *user) {
		bob.p.stop(syscall.SIGTERM)
		bob.start(t)
	})
	alice.must(t, "send", "--group-id", group, "--msg", "welcome back")
	checkMessage(t, bob.recvUntil(t, group, 1)[0], group, alice.id, "welcome back")
}

// (c) Bob's daemon is killed after Alice sent and before Bob read; after a
// restart every message is there exactly once.
func TestDaemonKilledKeepsMessagesOnce(t *testing.T) {
	_, alice, bob, group := twoPeople(t, nil)
	var want []string
	for i := range 20 {
		text := fmt.Sprintf("message %d", i)
		want = append(want, text)
		alice.must(t, "send", "--group-id", group, "--msg", text)
	}
	bob.p.stop(syscall.SIGKILL)
	bob.start(t)
	got := bob.recvUntil(t, group, len(want))
	var texts []string
	for _, m := range got {
		checkMessage(t, m, group, alice.id, m.Text)
		texts = append(texts, m.Text)
	}
	if !slices.Equal(texts, want) {
		t.Fatalf("after SIGKILL: %q, want %q", texts, want)
	}
	// And once more after a second kill, nothing is repeated.
	bob.p.stop(syscall.SIGKILL)
	bob.start(t)
	if h := bob.history(t, group); len(h) != len(want) {
		t.Fatalf("history after a second kill has %d messages, want %d", len(h), len(want))
	}
}

// (d) The node stops mid-conversation: messages sent meanwhile wait in the
// outboxes and arrive once the node is back and the daemons reconnected.
func TestNodeRestartOutbox(t *testing.T) {
	n, alice, bob, group := twoPeople(t, nil)
	alice.must(t, "send", "--group-id", group, "--msg", "before")
	checkMessage(t, bob.recvUntil(t, group, 1)[0], group, alice.id, "before")

	n.p.stop(syscall.SIGKILL)
	waitFor(t, "daemons see the node down", func() bool {
		return alice.status(t).Node.State != "connected" && bob.status(t).Node.State != "connected"
	})
	// Sent while the node is down: queued, saying since when, exit status 4.
	r := alice.run(t, "send", "--group-id", group, "--msg", "while down 1", "--json")
	if r.code != 4 || !contains(r.stdout, `"delivered":false`) || !contains(r.stdout, `"state":"queued"`) || !contains(r.stdout, `"unreachable_since":"`) {
		t.Fatalf("send while down: %+v", r)
	}
	r = alice.run(t, "send", "--group-id", group, "--msg", "while down 2")
	if r.code != 4 || !contains(r.stdout, ": queued: node "+n.addr+" unreachable since ") {
		t.Fatalf("send while down: %+v", r)
	}
	if r := bob.run(t, "send", "--group-id", group, "--msg", "bob while down"); r.code != 4 {
		t.Fatalf("bob's send while down: %+v", r)
	}
	if st := alice.status(t); st.OutboxPending != 2 {
		t.Fatalf("alice outbox: %+v", st)
	}

	startNode(t, n.dir, n.addr)
	got := bob.recvUntil(t, group, 2)
	checkMessage(t, got[0], group, alice.id, "while down 1")
	checkMessage(t, got[1], group, alice.id, "while down 2")
	checkMessage(t, alice.recvUntil(t, group, 1)[0], group, bob.id, "bob while down")
	waitFor(t, "outboxes drained", func() bool { return alice.status(t).OutboxPending == 0 && bob.status(t).OutboxPending == 0 })
}
