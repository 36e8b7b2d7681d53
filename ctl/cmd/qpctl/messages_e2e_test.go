package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"
)

// e2eRunIn is e2eRun with stdin.
func e2eRunIn(t *testing.T, qpctl, socket, stdin string, args ...string) e2eResult {
	t.Helper()
	cmd := exec.Command(qpctl, args...)
	cmd.Env = append(os.Environ(), "QPQ_SOCKET="+socket)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run qpctl %q: %v", args, err)
	}
	return e2eResult{out.String(), errOut.String(), code}
}

// e2ePair is alice and bob, registered at one node, in a group "team".
type e2ePair struct {
	qpd, qpctl         string
	node               *testnode.Node
	aliceSock, bobSock string
	aliceDir, bobDir   string
	aliceKey, bobKey   string
	aliceD, bobD       *e2eDaemon
}

func e2eStartPair(t *testing.T) *e2ePair {
	t.Helper()
	p := e2eStartDaemons(t)
	// Bob takes alice's invitations: she is a contact of his.
	if r := e2eRun(t, p.qpctl, p.bobSock, "add-contact", p.aliceKey, "--name", "alice"); r.code != 0 {
		t.Fatalf("add-contact: %+v", r)
	}
	if r := e2eRun(t, p.qpctl, p.aliceSock, "create-group", "--name", "team"); r.code != 0 {
		t.Fatalf("create-group: %+v", r)
	}
	if r := e2eRun(t, p.qpctl, p.aliceSock, "invite", "--group", "team", "--peer-key", p.bobKey); r.code != 0 {
		t.Fatalf("invite: %+v", r)
	}
	if r := e2eRun(t, p.qpctl, p.bobSock, "join", "--wait", "30s"); r.code != 0 || !strings.Contains(r.stdout, "team") {
		t.Fatalf("join: %+v", r)
	}
	return p
}

// e2eStartDaemons starts a node and alice's and bob's qpd, both
// registered with KeyPackages at the node (no group yet).
func e2eStartDaemons(t *testing.T) *e2ePair {
	t.Helper()
	qpd, qpctl := e2eBuild(t)
	p := &e2ePair{qpd: qpd, qpctl: qpctl, node: testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")}
	dir := e2eDir(t)
	p.aliceDir, p.bobDir = filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	p.aliceSock, p.bobSock = filepath.Join(p.aliceDir, "qpd.sock"), filepath.Join(p.bobDir, "qpd.sock")
	for _, d := range []string{p.aliceDir, p.bobDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p.aliceD = e2eStartQPD(t, qpd, p.aliceDir, p.aliceSock, "--server", p.node.Addr)
	p.bobD = e2eStartQPD(t, qpd, p.bobDir, p.bobSock, "--server", p.node.Addr)
	p.aliceKey = strings.TrimSpace(e2eRun(t, qpctl, p.aliceSock, "register").stdout)
	p.bobKey = strings.TrimSpace(e2eRun(t, qpctl, p.bobSock, "register").stdout)
	e2eWaitKeyPackages(t, qpctl, p.aliceSock, 10)
	e2eWaitKeyPackages(t, qpctl, p.bobSock, 10)
	return p
}

// e2eFollow is a running `qpctl --json recv --follow`.
type e2eFollow struct {
	lines  chan string
	stderr *bytes.Buffer
}

func e2eStartFollow(t *testing.T, qpctl, socket string, args ...string) *e2eFollow {
	t.Helper()
	cmd := exec.Command(qpctl, append([]string{"--socket", socket, "--json", "recv", "--follow"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &e2eFollow{lines: make(chan string, 64), stderr: &bytes.Buffer{}}
	cmd.Stderr = f.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
	}()
	return f
}

func (f *e2eFollow) next(t *testing.T) messageJSON {
	t.Helper()
	select {
	case l, ok := <-f.lines:
		if !ok {
			t.Fatalf("recv --follow ended; stderr: %s", f.stderr.String())
		}
		var m messageJSON
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatalf("no message from recv --follow; stderr: %s", f.stderr.String())
	}
	return messageJSON{}
}

// bigText is n bytes of multi-line UTF-8 text.
func bigText(n int) string {
	var b strings.Builder
	line := "ünïcødé line with\ttabs and \"quotes\" \\ backslashes\n"
	for b.Len()+len(line) <= n {
		b.WriteString(line)
	}
	for b.Len() < n {
		b.WriteByte('x')
	}
	return b.String()
}

// TestE2ESendTextsAndFollowAcrossRestart: 64 KiB texts go from stdin and
// from a file to the other member byte for byte; over the limit and binary
// input are clear usage errors; bob's `recv --follow` lives through a
// restart of his qpd and prints every message exactly once, in order.
func TestE2ESendTextsAndFollowAcrossRestart(t *testing.T) {
	p := e2eStartPair(t)
	f := e2eStartFollow(t, p.qpctl, p.bobSock, "--group", "team")

	send := func(stdin string, args ...string) e2eResult {
		t.Helper()
		return e2eRunIn(t, p.qpctl, p.aliceSock, stdin, append([]string{"send", "--group", "team"}, args...)...)
	}
	if r := send("", "--msg", "m1"); r.code != 0 || !strings.HasSuffix(r.stdout, ": delivered to the node\n") {
		t.Fatalf("send m1: %+v", r)
	}
	if m := f.next(t); m.Text != "m1" {
		t.Fatalf("first message %+v", m)
	}

	big := bigText(64 << 10)
	if r := send(big, "--file", "-"); r.code != 0 {
		t.Fatalf("send 64 KiB from stdin: %+v", r)
	}
	if m := f.next(t); m.Text != big {
		t.Fatalf("64 KiB from stdin arrived as %d bytes, differing", len(m.Text))
	}
	file := filepath.Join(t.TempDir(), "msg.txt")
	big2 := "file:" + big[5:]
	os.WriteFile(file, []byte(big2), 0o600)
	if r := send("", "--file", file); r.code != 0 {
		t.Fatalf("send 64 KiB from a file: %+v", r)
	}
	if m := f.next(t); m.Text != big2 {
		t.Fatalf("64 KiB from a file arrived as %d bytes, differing", len(m.Text))
	}
	r := send(big+"x", "--file", "-")
	if r.code != exitUsage || !strings.Contains(r.stderr, "65536 bytes") {
		t.Fatalf("send over the limit: %+v", r)
	}
	os.WriteFile(file, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 0o600)
	r = send("", "--file", file)
	if r.code != exitUsage || !strings.Contains(r.stderr, "not text") {
		t.Fatalf("send binary: %+v", r)
	}

	// Bob's qpd restarts; alice sends while it is down and after.
	p.bobD.stop(t)
	if r := send("", "--msg", "m2 while bob's qpd is down"); r.code != 0 {
		t.Fatalf("send m2: %+v", r)
	}
	p.bobD = e2eStartQPD(t, p.qpd, p.bobDir, p.bobSock, "--server", p.node.Addr)
	for _, want := range []string{"m2 while bob's qpd is down", "m3", "m4"} {
		if want != "m2 while bob's qpd is down" {
			if r := send("", "--msg", want); r.code != 0 {
				t.Fatalf("send %s: %+v", want, r)
			}
		}
		if m := f.next(t); m.Text != want {
			t.Fatalf("after the restart got %q, want %q (stderr %s)", m.Text, want, f.stderr.String())
		}
	}
	if !strings.Contains(f.stderr.String(), "waiting for it to come back") {
		t.Errorf("recv --follow did not say it lost qpd: %s", f.stderr.String())
	}
}
