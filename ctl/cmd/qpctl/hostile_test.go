package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestE2EHostileTextIsEscaped plays a group member who names the group and
// writes messages to forge lines, clear the screen, set the terminal title
// and reorder text: the text output shows all of it escaped, each message
// starting exactly one line; --json gives the bytes back exactly.
func TestE2EHostileTextIsEscaped(t *testing.T) {
	qpd, qpctl := e2eBuild(t)
	dir := e2eDir(t)
	socket := filepath.Join(dir, "qpd.sock")
	name := "team\x1b]0;pwned\x07\u202e"
	// qpd keeps UTF-8 texts only (it refuses others on receipt).
	var texts []string
	for _, h := range hostile {
		if utf8.ValidString(h) {
			texts = append(texts, h)
		}
	}
	recvSeedGroup(t, filepath.Join(dir, "state"), name, texts...)
	e2eStartQPD(t, qpd, dir, socket)

	r := e2eRun(t, qpctl, socket, "recv", "--all", "--peek")
	if r.code != 0 {
		t.Fatalf("recv: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	starts := 0
	for _, l := range lines {
		if !terminalSafe(l) {
			t.Errorf("unsafe line %q", l)
		}
		switch {
		case strings.HasPrefix(l, `[team\x1b]0;pwned\x07\u202e #`):
			starts++
		case strings.HasPrefix(l, "    | "):
		default:
			t.Errorf("line is neither a message nor a continuation: %q", l)
		}
	}
	if starts != len(texts) {
		t.Errorf("%d message lines for %d messages:\n%s", starts, len(texts), r.stdout)
	}
	if !strings.Contains(r.stdout, "ok\n    | [team #9 2026-01-01T00:00:00Z] alice: please send me your password") {
		t.Errorf("forged line not shown as a continuation:\n%s", r.stdout)
	}
	for _, want := range []string{`\x1b[2J\x1b[H cleared`, `carriage\roverwrite`, `abc\u202egnp.exe`, `\x9b31mC1 CSI`, `nul\x00bell\x07del\x7f`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e2eRun(t, qpctl, socket, "groups")
	if r.code != 0 || !terminalSafe(strings.TrimSuffix(r.stdout, "\n")) || !strings.Contains(r.stdout, `team\x1b]0;pwned\x07\u202e`) {
		t.Errorf("groups: %+v", r)
	}

	r = e2eRun(t, qpctl, socket, "--json", "recv", "--all", "--peek")
	jl := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(jl) != len(texts) {
		t.Fatalf("recv --json: %+v", r)
	}
	for i, l := range jl {
		var m messageJSON
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m.Text != texts[i] || m.GroupName != name {
			t.Errorf("message %d: text %q name %q, want %q %q", i, m.Text, m.GroupName, texts[i], name)
		}
	}
}

// TestE2EHostileInvitationIsEscaped plays a stranger who invites with a
// group name made to forge lines and drive the terminal: `requests` and
// `accept` show it escaped, one line each; --json gives it back exactly.
// (Contact names are the user's own and qpd refuses unprintable ones.)
func TestE2EHostileInvitationIsEscaped(t *testing.T) {
	p := e2eStartDaemons(t)
	name := "x\n1  from " + p.bobKey + "  forged\x1b]0;pwned\x07\u202e"
	for _, args := range [][]string{{"create-group", "--name", name}, {"invite", "--group", name, "--peer-key", p.bobKey}} {
		if r := e2eRun(t, p.qpctl, p.aliceSock, args...); r.code != 0 {
			t.Fatalf("qpctl %q: %+v", args, r)
		}
	}
	safeLines := func(what, out string, n int) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != n {
			t.Errorf("%s: %d lines, want %d:\n%s", what, len(lines), n, out)
		}
		for _, l := range lines {
			if !terminalSafe(l) {
				t.Errorf("%s: unsafe line %q", what, l)
			}
		}
	}
	var req struct {
		ID        uint64 `json:"id"`
		GroupName string `json:"group_name"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		r := e2eRun(t, p.qpctl, p.bobSock, "--json", "requests")
		if r.code == 0 && r.stdout != "" && json.Unmarshal([]byte(r.stdout), &req) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request at bob: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if req.GroupName != name {
		t.Errorf("--json group_name %q, want %q", req.GroupName, name)
	}
	r := e2eRun(t, p.qpctl, p.bobSock, "requests")
	safeLines("requests", r.stdout, 1)
	if r.code != 0 || !strings.Contains(r.stdout, `\x1b]0;pwned\a\u202e`) {
		t.Errorf("requests: %+v", r)
	}
	r = e2eRun(t, p.qpctl, p.bobSock, "accept", strconv.FormatUint(req.ID, 10))
	safeLines("accept", r.stdout, 1)
	if r.code != 0 || !strings.Contains(r.stdout, `forged\x1b]0;pwned\x07\u202e`) {
		t.Errorf("accept: %+v", r)
	}
}
