package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// groupSeqJSON is the part of a message's JSON that numbers it.
type groupSeqJSON struct {
	MessageID string `json:"message_id"`
	Text      string `json:"text"`
	Seq       uint64 `json:"seq"`
	GroupSeq  uint64 `json:"group_seq"`
	Outgoing  bool   `json:"outgoing"`
}

// Three people send into one group, in turns and all at once, with a
// commit in between: every member numbers every message the same (the
// node's per-group sequence), in text and JSON output alike, although
// their own histories interleave differently.
func TestGroupNumbersSameForEveryMember(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	users := registeredUsers(t, root, n.addr, "alice", "bob", "carol")
	var wg sync.WaitGroup
	alice := users[0]
	group := alice.createGroup(t, "team")
	alice.must(t, "invite", "--group-id", group, "--peer-key", users[1].id, "--peer-key", users[2].id)
	for _, u := range users[1:] {
		u.join(t, group, "team")
	}
	var texts []string
	send := func(u *user, text string) {
		out := jsonLines[struct {
			State    string `json:"state"`
			GroupSeq uint64 `json:"group_seq"`
		}](t, u.must(t, "send", "--group-id", group, "--msg", text, "--wait", "30s", "--json"))
		if len(out) != 1 || out[0].State != "delivered" || out[0].GroupSeq == 0 {
			t.Errorf("%s send %q: %+v, want delivered with a group number", u.name, text, out)
		}
	}
	for i, u := range []*user{alice, users[2], users[1], users[2], alice} {
		text := fmt.Sprintf("turn %d from %s", i, u.name)
		texts = append(texts, text)
		send(u, text)
	}
	users[1].must(t, "update", "--group-id", group) // a commit takes a number too
	for i, u := range users {
		text := fmt.Sprintf("together %d from %s", i, u.name)
		texts = append(texts, text)
		wg.Go(func() { send(u, text) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	numbers := map[string]uint64{} // message id -> group number, as the first member saw it
	for _, u := range users {
		var hist []groupSeqJSON
		waitFor(t, u.name+" has every message", func() bool {
			hist = jsonLines[groupSeqJSON](t, u.must(t, "recv", "--group-id", group, "--all", "--peek", "--json"))
			return len(hist) == len(texts)
		})
		seen := map[uint64]bool{}
		for _, m := range hist {
			if m.GroupSeq == 0 || seen[m.GroupSeq] {
				t.Fatalf("%s: message %q has group number %d (outgoing %v), want a distinct one", u.name, m.Text, m.GroupSeq, m.Outgoing)
			}
			seen[m.GroupSeq] = true
			if want, ok := numbers[m.MessageID]; ok && want != m.GroupSeq {
				t.Fatalf("%s numbers %q #%d, another member #%d", u.name, m.Text, m.GroupSeq, want)
			}
			numbers[m.MessageID] = m.GroupSeq
		}
		// The text output shows the same numbers.
		text := u.must(t, "recv", "--group-id", group, "--all", "--peek")
		for _, m := range hist {
			if !strings.Contains(text, fmt.Sprintf("[team #%d ", m.GroupSeq)) {
				t.Fatalf("%s: text output lacks #%d for %q:\n%s", u.name, m.GroupSeq, m.Text, text)
			}
		}
	}
	if len(numbers) != len(texts) {
		t.Fatalf("%d distinct messages across members, want %d", len(numbers), len(texts))
	}
}
