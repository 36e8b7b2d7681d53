package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/s3test"
)

// The binaries, built once for the package by TestMain.
var (
	binDir                      string
	qpnodeBin, qpdBin, qpctlBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "qpq-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./node/cmd/qpnode", "./daemon/cmd/qpd", "./ctl/cmd/qpctl")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	qpnodeBin, qpdBin, qpctlBin = filepath.Join(dir, "qpnode"), filepath.Join(dir, "qpd"), filepath.Join(dir, "qpctl")
	code := m.Run()
	s3test.Stop() // the S3 server of the attachment tests, if one started
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running child process with its output kept for failures.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(args[0], args[1:]...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			// A failed test shows where each process was: SIGQUIT makes a
			// Go program print every goroutine's stack before it exits.
			p.stop(syscall.SIGQUIT)
		}
		p.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", p.name, p.out.String())
		}
	})
	return p
}

// stop sends sig and waits for the process to end.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tempDir is a short temporary folder (Unix socket paths are limited).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "qpq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// node is a qpnode process.
type node struct {
	dir, addr string
	p         *proc
}

// startNode starts qpnode on addr ("127.0.0.1:0" for any free port);
// extra flags override the defaults.
func startNode(t *testing.T, dir, addr string, extra ...string) *node {
	t.Helper()
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	n := &node{dir: dir}
	deadline := time.Now().Add(20 * time.Second)
	for {
		args := []string{qpnodeBin, "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--ready-file", ready,
			"--log-level", "warn", "--rate-limit", "100000", "--rate-burst", "100000"}
		n.p = startProc(t, "qpnode", append(args, extra...)...)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(ready); err == nil && len(bytes.TrimSpace(b)) > 0 {
				n.addr = strings.TrimSpace(string(b))
				return n
			}
			select {
			case <-n.p.done:
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("qpnode did not start:\n%s", n.p.out.String())
		}
		// The port of a restarted node may still be held for a moment.
		time.Sleep(100 * time.Millisecond)
	}
}

// user is one person: a qpd process with its own state folder and socket.
type user struct {
	name, dir, socket, nodeAddr string
	id                          string
	p                           *proc
	// consent: invitations of non-contacts wait as requests (qpd's
	// default); otherwise the user takes every invitation.
	consent bool
	extra   []string // more qpd flags
}

func (u *user) invitations() string {
	if u.consent {
		return "contacts"
	}
	return "anyone"
}

func newUser(t *testing.T, root, name, nodeAddr string, qpdFlags ...string) *user {
	t.Helper()
	u := &user{name: name, dir: filepath.Join(root, name), nodeAddr: nodeAddr, extra: qpdFlags}
	u.socket = filepath.Join(u.dir, "s")
	u.start(t)
	return u
}

// start runs qpd and waits for its socket to answer.
func (u *user) start(t *testing.T) {
	t.Helper()
	args := []string{qpdBin, "--state-dir", u.dir, "--socket", u.socket, "--server", u.nodeAddr, "--log-level", "debug",
		"--invitations", u.invitations()}
	u.p = startProc(t, "qpd "+u.name, append(args, u.extra...)...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := u.run(t, "status")
		if r.code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("qpd %s did not come up: %+v", u.name, r)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs qpctl against the user's daemon.
func (u *user) run(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qpctlBin, append([]string{"--socket", u.socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("qpctl %q: %v", args, err)
	}
	return r
}

// must runs qpctl and fails the test unless it succeeds.
func (u *user) must(t testing.TB, args ...string) string {
	t.Helper()
	r := u.run(t, args...)
	if r.code != 0 {
		t.Fatalf("%s: qpctl %q: exit %d: %s%s", u.name, args, r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

type statusJSON struct {
	Identity string `json:"identity"`
	Node     struct {
		State string `json:"state"`
	} `json:"node"`
	KeyPackagesLeft *int `json:"key_packages_left"`
	OutboxPending   int  `json:"outbox_pending"`
}

func (u *user) status(t testing.TB) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(u.must(t, "status", "--json")), &st); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	return st
}

// registeredUsers starts a daemon for each name and registers them all at once.
func registeredUsers(t *testing.T, root, nodeAddr string, names ...string) []*user {
	t.Helper()
	users := make([]*user, len(names))
	for i, name := range names {
		users[i] = newUser(t, root, name, nodeAddr)
	}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() { u.register(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return users
}

// register creates the identity and waits until the node holds its
// KeyPackages.
func (u *user) register(t *testing.T) {
	t.Helper()
	u.id = strings.TrimSpace(u.must(t, "register"))
	if len(u.id) != 64 {
		t.Fatalf("register printed %q", u.id)
	}
	waitFor(t, u.name+" connected with KeyPackages", func() bool {
		st := u.status(t)
		return st.Node.State == "connected" && st.KeyPackagesLeft != nil && *st.KeyPackagesLeft > 0
	})
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type groupJSON struct {
	CipherSuite     uint32 `json:"cipher_suite"`
	CipherSuiteName string `json:"cipher_suite_name"`
	PostQuantum     bool   `json:"post_quantum"`
	GroupID         string `json:"group_id"`
	Name            string `json:"name"`
	Epoch           uint64 `json:"epoch"`
	MemberCount     int    `json:"member_count"`
}

type messageJSON struct {
	GroupID   string `json:"group_id"`
	GroupName string `json:"group_name"`
	Seq       uint64 `json:"seq"`
	GroupSeq  uint64 `json:"group_seq"`
	MessageID string `json:"message_id"`
	Sender    string `json:"sender"`
	Text      string `json:"text"`
	SentAt    string `json:"sent_at"`
	Outgoing  bool   `json:"outgoing"`
}

type memberJSON struct {
	CipherSuiteName    string `json:"cipher_suite_name"`
	PostQuantum        bool   `json:"post_quantum"`
	Identity           string `json:"identity"`
	Self               bool   `json:"self"`
	Epoch              uint64 `json:"epoch"`
	EpochAuthenticator string `json:"epoch_authenticator"`
}

// jsonLines decodes one JSON object per line.
func jsonLines[T any](t testing.TB, s string) []T {
	t.Helper()
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

// createGroup creates a group and returns its id.
func (u *user) createGroup(t *testing.T, name string) string {
	t.Helper()
	gs := jsonLines[groupJSON](t, u.must(t, "create-group", "--group-id", name, "--json"))
	if len(gs) != 1 || gs[0].Name != name || len(gs[0].GroupID) != 32 {
		t.Fatalf("create-group: %+v", gs)
	}
	return gs[0].GroupID
}

// join waits for the invitation to group and checks its name.
func (u *user) join(t *testing.T, group, name string) {
	t.Helper()
	gs := jsonLines[groupJSON](t, u.must(t, "join", "--wait", "30s", "--json"))
	if len(gs) != 1 || gs[0].GroupID != group || gs[0].Name != name {
		t.Fatalf("%s join: %+v", u.name, gs)
	}
}

// recvUntil reads (and marks read) until n messages arrived.
func (u *user) recvUntil(t *testing.T, group string, n int) []messageJSON {
	t.Helper()
	var got []messageJSON
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: received %d of %d messages: %+v", u.name, len(got), n, got)
		}
		got = append(got, jsonLines[messageJSON](t, u.must(t, "recv", "--group-id", group, "--wait", "5s", "--json"))...)
	}
	if len(got) != n {
		t.Fatalf("%s: received %d messages, want %d: %+v", u.name, len(got), n, got)
	}
	return got
}

// history is the user's whole stored history of a group.
func (u *user) history(t testing.TB, group string) []messageJSON {
	t.Helper()
	return jsonLines[messageJSON](t, u.must(t, "recv", "--group-id", group, "--all", "--peek", "--json"))
}

func (u *user) members(t testing.TB, group string) []memberJSON {
	t.Helper()
	return jsonLines[memberJSON](t, u.must(t, "members", "--group-id", group, "--json"))
}
