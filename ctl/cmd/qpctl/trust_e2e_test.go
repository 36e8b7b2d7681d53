package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2EConsentAndVerification: a stranger's invitation waits in
// `qpctl requests` (never as a joined group), accept joins it and adds the
// inviter as a contact, safety numbers match on both sides, verify marks
// the contact, block lists the identity as blocked.
func TestE2EConsentAndVerification(t *testing.T) {
	p := e2eStartDaemons(t)
	qpctl, aliceSock, bobSock, alice := p.qpctl, p.aliceSock, p.bobSock, p.aliceKey
	bob := p.bobKey

	must := func(sock string, args ...string) string { t.Helper(); return e2eMust(t, qpctl, sock, args...) }
	must(aliceSock, "create-group", "--name", "from alice")
	must(aliceSock, "invite", "--group", "from alice", "--peer-key", bob)
	type request struct {
		ID        uint64 `json:"id"`
		Inviter   string `json:"inviter"`
		GroupName string `json:"group_name"`
	}
	var req request
	for deadline := time.Now().Add(20 * time.Second); ; {
		out := must(bobSock, "--json", "requests")
		if out != "" && json.Unmarshal([]byte(out), &req) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no request at bob")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if req.Inviter != alice || req.GroupName != "from alice" {
		t.Fatalf("request %+v", req)
	}
	if out := must(bobSock, "groups"); strings.Contains(out, "from alice") {
		t.Fatalf("bob lists the group before accepting: %q", out)
	}
	if out := must(bobSock, "accept", strconv.FormatUint(req.ID, 10), "--contact-name", "alice"); !strings.Contains(out, "joined") || !strings.Contains(out, "from alice") {
		t.Fatalf("accept: %q", out)
	}
	if out := must(bobSock, "contacts"); !strings.Contains(out, alice) || !strings.Contains(out, "unverified") {
		t.Fatalf("contacts: %q", out)
	}
	must(aliceSock, "add-contact", bob, "--name", "bob")
	sa := strings.Split(must(aliceSock, "safety-number", "bob"), "\n")[0]
	sb := strings.Split(must(bobSock, "safety-number", "alice"), "\n")[0]
	if sa != sb || len(sa) != 71 {
		t.Fatalf("safety numbers %q and %q", sa, sb)
	}
	if out := must(bobSock, "verify", "alice"); !strings.Contains(out, "verified") || strings.Contains(out, "unverified") {
		t.Fatalf("verify: %q", out)
	}
	stranger := strings.Repeat("ab", 32)
	if out := must(bobSock, "block", stranger); !strings.Contains(out, "blocked") {
		t.Fatalf("block: %q", out)
	}
	if out := must(bobSock, "contacts"); !strings.Contains(out, "BLOCKED") {
		t.Fatalf("contacts after block: %q", out)
	}
	if r := e2eRun(t, qpctl, bobSock, "accept", "x"); r.code != 2 {
		t.Fatalf("accept x: %+v, want a usage error", r)
	}
}
