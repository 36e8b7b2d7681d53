package main

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2EContactsAndDirectChat, two qpd processes and a real node: an
// address book (contact add/list/rename/remove), names and key prefixes
// accepted where keys are (invite, remove, safety-number, send --to),
// names that read as keys refused, whoami --qr; and both people starting
// their direct chat at the same moment end in one conversation with the
// messages of both, marked as direct in `groups`.
func TestE2EContactsAndDirectChat(t *testing.T) {
	p := e2eStartDaemons(t)
	qpctl, aliceSock, bobSock := p.qpctl, p.aliceSock, p.bobSock
	must := func(sock string, args ...string) string { t.Helper(); return e2eMust(t, qpctl, sock, args...) }
	must(aliceSock, "contact", "add", "bob", p.bobKey)
	must(bobSock, "contact", "add", "alice", p.aliceKey)
	if out := must(aliceSock, "contact", "list"); !strings.Contains(out, p.bobKey) || !strings.Contains(out, "bob") {
		t.Fatalf("contact list: %q", out)
	}
	// A name that reads as a key prefix is refused; a short hex word is a
	// name; a hostile name is refused.
	for _, name := range []string{p.bobKey[:8], "DEADBEEF", "x\u202ey"} {
		if r := e2eRun(t, qpctl, aliceSock, "contact", "add", name, p.bobKey); r.code == 0 || !strings.Contains(r.stderr, "invalid") {
			t.Fatalf("contact add %q: %+v", name, r)
		}
	}
	// Key prefixes (8+ hex digits) and names both name bob.
	sn := strings.Split(must(aliceSock, "safety-number", "bob"), "\n")[0]
	if got := strings.Split(must(aliceSock, "safety-number", strings.ToUpper(p.bobKey[:10])), "\n")[0]; got != sn || len(sn) != 71 {
		t.Fatalf("safety number by key prefix %q, by name %q", got, sn)
	}
	if out := must(aliceSock, "whoami", "--qr"); !strings.HasPrefix(out, p.aliceKey+"\n") || !strings.Contains(out, "█") {
		t.Fatalf("whoami --qr: %q", out)
	}

	// Both start the direct chat at the same moment.
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, s := range []struct{ sock, to, text string }{{aliceSock, "bob", "hi bob"}, {bobSock, "alice", "hi alice"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if r := e2eRun(t, qpctl, s.sock, "send", "--to", s.to, "--msg", s.text); r.code != 0 {
				t.Errorf("send --to %s: %+v", s.to, r)
			}
		}()
	}
	close(start)
	wg.Wait()
	type group struct {
		ID         string `json:"group_id"`
		Direct     bool   `json:"direct"`
		Peer       string `json:"direct_peer"`
		PeerName   string `json:"direct_peer_name"`
		MemberCont int    `json:"member_count"`
	}
	directs := func(sock string) []group {
		t.Helper()
		var out []group
		for _, line := range strings.Split(strings.TrimSpace(must(sock, "--json", "groups")), "\n") {
			var g group
			if line == "" {
				continue
			}
			if err := json.Unmarshal([]byte(line), &g); err != nil {
				t.Fatalf("groups line %q: %v", line, err)
			}
			if g.Direct {
				out = append(out, g)
			}
		}
		return out
	}
	history := func(sock, gid string) []string {
		t.Helper()
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(must(sock, "--json", "recv", "--group", gid, "--all", "--peek")), "\n") {
			var m struct {
				Text string `json:"text"`
			}
			if line != "" && json.Unmarshal([]byte(line), &m) == nil {
				out = append(out, m.Text)
			}
		}
		sort.Strings(out)
		return out
	}
	oneChat := func(bobName string, want ...string) string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			da, db := directs(aliceSock), directs(bobSock)
			if len(da) == 1 && len(db) == 1 && da[0].ID == db[0].ID &&
				slices.Equal(history(aliceSock, da[0].ID), want) && slices.Equal(history(bobSock, da[0].ID), want) {
				if da[0].Peer != p.bobKey || da[0].PeerName != bobName || db[0].Peer != p.aliceKey {
					t.Fatalf("direct chats %+v, %+v", da[0], db[0])
				}
				return da[0].ID
			}
			if time.Now().After(deadline) {
				t.Fatalf("not one direct chat with both messages: alice %+v, bob %+v", da, db)
			}
		}
	}
	gid := oneChat("bob", "hi alice", "hi bob")
	if out := must(aliceSock, "groups"); !strings.Contains(out, "direct with bob") {
		t.Fatalf("groups does not mark the direct chat: %q", out)
	}
	// Renamed, the contact still reaches the same chat.
	must(aliceSock, "contact", "rename", "bob", "robert")
	must(aliceSock, "send", "--to", "robert", "--msg", "renamed")
	must(bobSock, "send", "--to", p.aliceKey[:12], "--msg", "by prefix")
	if got := oneChat("robert", "by prefix", "hi alice", "hi bob", "renamed"); got != gid {
		t.Fatalf("the chat changed from %s to %s", gid, got)
	}
	// The chat stays of two; groups take names.
	if r := e2eRun(t, qpctl, aliceSock, "invite", "--group", gid, "--peer-key", "robert"); r.code == 0 {
		t.Fatalf("invite into a direct chat: %+v", r)
	}
	must(aliceSock, "create-group", "--name", "team")
	if out := must(aliceSock, "invite", "--group", "team", "--peer-key", "robert"); !strings.Contains(out, "added "+p.bobKey) {
		t.Fatalf("invite by contact name: %q", out)
	}
	must(aliceSock, "remove", "--group", "team", "--peer-key", "robert")
	must(aliceSock, "contact", "remove", "robert")
	if r := e2eRun(t, qpctl, aliceSock, "send", "--to", "robert", "--msg", "x"); r.code == 0 || !strings.Contains(r.stderr, "no contact") {
		t.Fatalf("send to a removed contact: %+v", r)
	}
}
