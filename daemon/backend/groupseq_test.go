package backend

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// groupsMessage waits until u's history of group holds text and returns it.
func groupsMessage(t *testing.T, u *groupsUser, group, text string) store.Message {
	t.Helper()
	var found store.Message
	groupsWait(t, "the message "+text, func() bool {
		p, err := u.b.Messages(context.Background(), MessagesQuery{Group: group, Limit: store.MaxMessageQuery})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(p.Messages, func(m store.Message) bool { return m.Text == text && (!m.Outgoing || m.GroupSeq > 0) })
		if i >= 0 {
			found = p.Messages[i]
		}
		return i >= 0
	})
	return found
}

// A member who sends a valid group message by direct enqueue, outside the
// group's order, gets no number for it (it is not even kept); what it fans
// out gets the node's number, the same in every member's history, and so
// does an honest member's message, in the sender's history too.
func TestHostileMemberCannotClaimGroupNumber(t *testing.T) {
	_, alice, bob, gid, mallory := hostileGroup(t, "numbers")
	ctx := context.Background()
	protect := func(text string) []byte {
		t.Helper()
		ct, err := mallory.Group.Protect(appendAppContentAuth(time.Now(), text, mallory.Group.EpochAuthenticator()), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	if _, _, err := mallory.Conn.Enqueue(ctx, bob.id, protect("direct claim"), []byte("direct")); err != nil {
		t.Fatalf("direct enqueue: %v", err)
	}
	groupsWait(t, "bob rejects the direct message", func() bool {
		evs, err := bob.b.EventsAfter(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(evs, func(e Event) bool { return e.Kind == store.EventRejected && bytes.Equal(e.By, mallory.Pub) })
	})
	n, _, err := mallory.Conn.FanOut(ctx, []byte("in order"), protect("in order"))
	if err != nil {
		t.Fatalf("fan out: %v", err)
	}
	for _, u := range []*groupsUser{alice, bob} {
		if m := groupsMessage(t, u, gid, "in order"); m.GroupSeq != n {
			t.Fatalf("a member numbers the fanned-out message %d, the node %d", m.GroupSeq, n)
		}
		if slices.Contains(groupsTexts(t, u, gid), "direct claim") {
			t.Fatal("the directly enqueued message is in a member's history")
		}
	}
	if _, err := alice.b.Send(ctx, gid, "from alice", nil); err != nil {
		t.Fatal(err)
	}
	mine, theirs := groupsMessage(t, alice, gid, "from alice"), groupsMessage(t, bob, gid, "from alice")
	if mine.GroupSeq <= n || mine.GroupSeq != theirs.GroupSeq {
		t.Fatalf("alice numbers her message %d, bob %d; want the same, after %d", mine.GroupSeq, theirs.GroupSeq, n)
	}
}
