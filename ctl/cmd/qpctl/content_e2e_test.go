package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// e2eHistory is a member's history of team as JSON lines.
func e2eHistory(t *testing.T, p *e2ePair, socket string, args ...string) []messageJSON {
	t.Helper()
	r := e2eRun(t, p.qpctl, socket, append([]string{"--json", "history", "--group", "team"}, args...)...)
	if r.code != 0 {
		t.Fatalf("history: %+v", r)
	}
	var out []messageJSON
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		var m messageJSON
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("history line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func e2eWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sentID is the message id `qpctl --json send` (or reply, react, ...)
// printed.
func sentID(t *testing.T, r e2eResult) string {
	t.Helper()
	var v struct {
		MessageID string `json:"message_id"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.MessageID == "" {
		t.Fatalf("send: %+v", r)
	}
	return v.MessageID
}

// TestE2EReplyReactEditDeleteHistory: reply, react, edit and delete from
// qpctl show on both members, in recv's text output (escaped) and in the
// JSON lines of history; history searches and filters by time; bob's edit
// of alice's message is refused.
func TestE2EReplyReactEditDeleteHistory(t *testing.T) {
	p := e2eStartPair(t)
	hello := sentID(t, e2eRun(t, p.qpctl, p.aliceSock, "--json", "send", "--group", "team", "--msg", "lunch at noon?"))
	e2eWaitFor(t, "bob has the message", func() bool { return len(e2eHistory(t, p, p.bobSock)) == 1 })
	sentID(t, e2eRun(t, p.qpctl, p.bobSock, "--json", "reply", "--group", "team", hello[:8], "--msg", "yes\x1b[31m"))
	sentID(t, e2eRun(t, p.qpctl, p.bobSock, "--json", "react", "--group", "team", hello, "👍"))
	sentID(t, e2eRun(t, p.qpctl, p.aliceSock, "--json", "edit", "--group", "team", hello, "--msg", "lunch at one?"))
	oops := sentID(t, e2eRun(t, p.qpctl, p.aliceSock, "--json", "send", "--group", "team", "--msg", "wrong chat"))
	sentID(t, e2eRun(t, p.qpctl, p.aliceSock, "--json", "delete", "--group", "team", oops))
	if r := e2eRun(t, p.qpctl, p.bobSock, "edit", "--group", "team", hello, "--msg", "mine now"); r.code == 0 || !strings.Contains(r.stderr, "author") {
		t.Fatalf("bob edits alice's message: %+v", r)
	}

	for _, sock := range []string{p.aliceSock, p.bobSock} {
		e2eWaitFor(t, "all changes everywhere", func() bool {
			h := e2eHistory(t, p, sock)
			if len(h) != 4 {
				return false
			}
			return h[0].Text == "lunch at one?" && h[0].EditedAt != "" &&
				h[1].Kind == "reply" && h[1].Ref == hello && h[1].Text == "yes\x1b[31m" &&
				h[2].Kind == "reaction" && h[2].Text == "👍" && h[2].Ref == hello &&
				h[3].Deleted && h[3].Text == ""
		})
	}
	r := e2eRun(t, p.qpctl, p.bobSock, "history", "--group", "team")
	for _, want := range []string{"[edited] lunch at one?", "[reply to " + hello[:8] + "]", "yes\\x1b[31m", "[reaction 👍 to " + hello[:8] + "]", "[deleted]"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bob's history lacks %q:\n%s", want, r.stdout)
		}
	}
	if h := e2eHistory(t, p, p.bobSock, "--search", "LUNCH"); len(h) != 1 || h[0].MessageID != hello {
		t.Errorf("search: %+v", h)
	}
	if h := e2eHistory(t, p, p.bobSock, "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); len(h) != 0 {
		t.Errorf("since an hour ahead: %+v", h)
	}
	// Bob reads: alice sees his delivery and read receipts of her message.
	if r := e2eRun(t, p.qpctl, p.bobSock, "recv"); r.code != 0 {
		t.Fatalf("recv: %+v", r)
	}
	e2eWaitFor(t, "alice sees bob's read receipt", func() bool {
		h := e2eHistory(t, p, p.aliceSock)
		return len(h) > 0 && len(h[0].Receipts) == 1 && h[0].Receipts[0].Member == p.bobKey && h[0].Receipts[0].Status == "read"
	})
}

// TestE2EWatchOncePerMessageAcrossRestart: `qpctl watch --exec` runs its
// command once per message of the other member, with the fields in the
// environment and the JSON on stdin, and keeps doing so, once each, across
// a restart of qpd and a restart of the watch itself.
func TestE2EWatchOncePerMessageAcrossRestart(t *testing.T) {
	p := e2eStartPair(t)
	dir := t.TempDir()
	log, cursor := filepath.Join(dir, "log"), filepath.Join(dir, "cursor")
	script := `printf '%s|%s|%s\n' "$QPQ_GROUP" "$QPQ_TEXT" "$(cat)" >> ` + log
	start := func() *exec.Cmd {
		cmd := exec.Command(p.qpctl, "--socket", p.bobSock, "watch", "--exec", script, "--cursor", cursor)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	lines := func() []string {
		b, _ := os.ReadFile(log)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	send := func(text string) {
		t.Helper()
		if r := e2eRun(t, p.qpctl, p.aliceSock, "send", "--group", "team", "--msg", text); r.code != 0 {
			t.Fatalf("send: %+v", r)
		}
	}
	w := start()
	e2eWaitFor(t, "the watch has its cursor", func() bool { _, err := os.Stat(cursor); return err == nil })
	send("w1")
	e2eWaitFor(t, "w1 ran", func() bool { return len(lines()) == 1 && lines()[0] != "" })
	if l := lines()[0]; !strings.HasPrefix(l, "team|w1|{") || !strings.Contains(l, `"text":"w1"`) {
		t.Fatalf("w1 ran with %q", l)
	}

	// Bob's qpd restarts, alice sends while it is down.
	p.bobD.stop(t)
	send("w2 while down")
	p.bobD = e2eStartQPD(t, p.qpd, p.bobDir, p.bobSock, "--server", p.node.Addr)
	send("w3")
	e2eWaitFor(t, "w2 and w3 ran", func() bool { return len(lines()) == 3 })

	// The watch itself stops and starts again: nothing runs twice.
	w.Process.Kill()
	w.Wait()
	send("w4 while the watch is stopped")
	start()
	e2eWaitFor(t, "w4 ran", func() bool { return len(lines()) == 4 })
	send("w5")
	e2eWaitFor(t, "w5 ran", func() bool { return len(lines()) == 5 })
	time.Sleep(500 * time.Millisecond) // a repeat would show up by now
	var texts []string
	for _, l := range lines() {
		texts = append(texts, strings.Split(l, "|")[1])
	}
	want := []string{"w1", "w2 while down", "w3", "w4 while the watch is stopped", "w5"}
	if strings.Join(texts, ",") != strings.Join(want, ",") {
		t.Fatalf("watch ran for %q, want %q", texts, want)
	}
}

// TestE2EDisappearingMessages: `qpctl disappear` sets the group's timer on
// both members; a message sent then is shown with its expiry, is gone
// from both histories after the timer, and after a clean stop of both
// qpd its text is nowhere in their database files.
func TestE2EDisappearingMessages(t *testing.T) {
	p := e2eStartPair(t)
	if r := e2eRun(t, p.qpctl, p.aliceSock, "disappear", "--group", "team", "1.5s"); r.code != exitUsage {
		t.Fatalf("disappear 1.5s: %+v, want a usage error", r)
	}
	if r := e2eRun(t, p.qpctl, p.aliceSock, "disappear", "--group", "team", "3s"); r.code != 0 {
		t.Fatalf("disappear: %+v", r)
	}
	e2eWaitFor(t, "bob has the timer", func() bool {
		h := e2eHistory(t, p, p.bobSock)
		return len(h) == 1 && h[0].Kind == "timer" && h[0].Text == "3"
	})
	const secret = "okapi-lantern-5521 vanishes"
	id := sentID(t, e2eRun(t, p.qpctl, p.aliceSock, "--json", "send", "--group", "team", "--msg", secret))
	e2eWaitFor(t, "bob has it with its expiry", func() bool {
		h := e2eHistory(t, p, p.bobSock)
		return len(h) == 2 && h[1].MessageID == id && h[1].ExpiresAt != ""
	})
	if r := e2eRun(t, p.qpctl, p.bobSock, "history", "--group", "team"); !strings.Contains(r.stdout, "[disappearing messages after 3s]") || !strings.Contains(r.stdout, "[disappears at ") {
		t.Fatalf("history: %+v", r)
	}
	for _, sock := range []string{p.aliceSock, p.bobSock} {
		e2eWaitFor(t, "the message is gone", func() bool {
			for _, m := range e2eHistory(t, p, sock) {
				if strings.Contains(m.Text, secret) {
					return false
				}
			}
			return true
		})
	}
	p.aliceD.stop(t)
	p.bobD.stop(t)
	for _, dir := range []string{p.aliceDir, p.bobDir} {
		for _, name := range []string{"qpd.db", "qpd.db-wal"} {
			b, err := os.ReadFile(filepath.Join(dir, "state", name))
			if err != nil && (name == "qpd.db" || !os.IsNotExist(err)) {
				t.Fatal(err)
			}
			if strings.Contains(string(b), secret) {
				t.Errorf("%s/%s still holds the text", filepath.Base(dir), name)
			}
		}
	}
}
