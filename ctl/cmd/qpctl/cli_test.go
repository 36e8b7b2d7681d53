package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// runCLI runs qpctl in process, with nothing listening on its socket.
func runCLI(t *testing.T, stdin string, args ...string) e2eResult {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"--socket", filepath.Join(t.TempDir(), "none.sock")}, args...)
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return e2eResult{out.String(), errOut.String(), code}
}

func TestHelpOnStdoutWithDescriptionsAndExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"help", "send"}, {"send", "--help"}, {"recv", "-h"}} {
		r := runCLI(t, "", args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("qpctl %q: %+v", args, r)
		}
	}
	r := runCLI(t, "", "--help")
	for _, want := range []string{"Exit status:", "create-group", "Create a group with you as its only member", "completion"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("qpctl --help lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runCLI(t, "", "help", "send")
	if !strings.Contains(r.stdout, "65536 bytes") || !strings.Contains(r.stdout, "--file") {
		t.Errorf("qpctl help send:\n%s", r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"send", "--msg", "x"}, {"whoami", "extra"}, {"status", "--bogus"}, {"create-group"}, {"recv", "--wait", "-1s"},
		{"link", "--qr", "--accept", "qpq-link-x"}, {"link", "--name", "laptop"}, {"link", "--timeout", "-1s"}, {"link", "--yes", "--accept", "qpq-link-x"}, {"devices", "revoke"}} {
		r := runCLI(t, "", args...)
		if last := lastLine(r.stderr); r.code != exitUsage || last == "" || strings.Contains(strings.ToLower(last), "usage") {
			t.Errorf("qpctl %q: %+v, want exit 2 and a message without the word usage", args, r)
		}
	}
}

func TestJSONErrorsAreObjects(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		kind string
	}{
		{[]string{"--json", "nope"}, exitUsage, "usage"},
		{[]string{"--json", "send", "--group", "g"}, exitUsage, "usage"},
		{[]string{"--json", "status"}, exitNotRunning, "not_running"},
	} {
		r := runCLI(t, "", c.args...)
		var e struct {
			Error struct {
				Kind       string `json:"kind"`
				Message    string `json:"message"`
				ExitStatus int    `json:"exit_status"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || r.code != c.code || e.Error.Kind != c.kind || e.Error.ExitStatus != c.code || e.Error.Message == "" || r.stdout != "" {
			t.Errorf("qpctl %q: %+v (%v), parsed %+v", c.args, r, err, e)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "qpctl ") || r.stderr != "" {
		t.Fatalf("qpctl --version: %+v", r)
	}
}

func TestVersionStampedAtBuild(t *testing.T) {
	qpd, qpctl := e2eBuild(t)
	for _, c := range [][2]string{{qpctl, "qpctl"}, {qpd, "qpd"}} {
		out, err := exec.Command(c[0], "--version").Output()
		if err != nil || string(out) != c[1]+" "+e2eVersion+"\n" {
			t.Errorf("%s --version: %q (%v)", c[1], out, err)
		}
	}
	out, err := exec.Command(qpd, "--help").Output()
	if err != nil || !strings.Contains(string(out), "Usage: qpd") || strings.Contains(string(out), "-auto-join qpctl") {
		t.Errorf("qpd --help: %q (%v)", out, err)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_qpctl", "zsh": "#compdef qpctl", "fish": "complete -c qpctl"} {
		r := runCLI(t, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s: code %d, %d bytes, no %q; stderr %q", shell, r.code, len(r.stdout), want, r.stderr)
		}
	}
	// Cobra's hidden completion command completes subcommands and flags.
	r := runCLI(t, "", "__complete", "cre")
	if r.code != 0 || !strings.Contains(r.stdout, "create-group") {
		t.Errorf("__complete cre: %+v", r)
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	r := runCLI(t, "", "man", dir)
	if r.code != 0 {
		t.Fatalf("qpctl man: %+v", r)
	}
	for _, name := range []string{"qpctl.1", "qpctl-send.1", "qpctl-recv.1", "qpctl-create-group.1"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Contains(b, []byte(".TH \"QPCTL\"")) {
			t.Errorf("%s: %v\n%.200s", name, err, b)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "qpctl-send.1"))
	if !bytes.Contains(b, []byte("64 KiB")) || !bytes.Contains(b, []byte("file")) {
		t.Errorf("qpctl-send.1 lacks the description:\n%s", b)
	}
}

// lastLine is the error line: the one before the hint.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return ""
	}
	return lines[len(lines)-2]
}

func TestPrintSentStates(t *testing.T) {
	since := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, c := range []struct {
		r          *daemonv1.SendResponse
		json       bool
		out, errIs string
		code       int
	}{
		{&daemonv1.SendResponse{Seq: 3, GroupSeq: 17, MessageId: "ab", State: daemonv1.DeliveryState_DELIVERY_STATE_DELIVERED}, false, "sent #17 ab: delivered to the node\n", "", 0},
		{&daemonv1.SendResponse{Seq: 3, MessageId: "ab", State: daemonv1.DeliveryState_DELIVERY_STATE_DELIVERED}, false, "sent #? ab: delivered to the node\n", "", 0},
		{&daemonv1.SendResponse{Seq: 3, MessageId: "ab", State: daemonv1.DeliveryState_DELIVERY_STATE_QUEUED, StateDetail: "node n:1 unreachable since 2026-01-02T03:04:05Z: refused", UnreachableSince: since}, false,
			"sent #? ab: queued: node n:1 unreachable since 2026-01-02T03:04:05Z: refused\n", "", exitQueued},
		{&daemonv1.SendResponse{Seq: 3, MessageId: "ab", State: daemonv1.DeliveryState_DELIVERY_STATE_QUEUED, StateDetail: "the node has not answered yet"}, false,
			"sent #? ab: queued: the node has not answered yet\n", "", 0},
		{&daemonv1.SendResponse{Seq: 3, MessageId: "ab", State: daemonv1.DeliveryState_DELIVERY_STATE_REFUSED, StateDetail: "too large\x1b[2J"}, false, "", `refused by the node: too large\x1b[2J`, exitError},
		{&daemonv1.SendResponse{Seq: 3, MessageId: "ab", State: daemonv1.DeliveryState_DELIVERY_STATE_REFUSED, StateDetail: "too large"}, true,
			`{"delivered":false,"detail":"too large","group_seq":0,"message_id":"ab","seq":3,"state":"refused"}` + "\n", `{"error":{"exit_status":1,"kind":"error","message":"message ab refused by the node: too large"}}`, exitError},
	} {
		var out, errOut bytes.Buffer
		a := &app{stdout: &out, stderr: &errOut, json: c.json, ran: true}
		code := a.exit(nil, a.printSent(c.r))
		if out.String() != c.out || code != c.code || !strings.Contains(errOut.String(), c.errIs) {
			t.Errorf("%v json=%v: stdout %q stderr %q code %d, want %q %q %d", c.r.GetState(), c.json, out.String(), errOut.String(), code, c.out, c.errIs, c.code)
		}
	}
}
