package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// e2eBins are qpd and qpctl, built once per test run into e2eBinDir.
var (
	e2eBinDir  string
	e2eBinOnce sync.Once
	e2eBinErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBinDir != "" {
		os.RemoveAll(e2eBinDir)
	}
	os.Exit(code)
}

// e2eVersion is the version stamped into the test binaries.
const e2eVersion = "v0.0.0-e2e"

// e2eBuild builds qpd and qpctl (once) and returns their paths.
func e2eBuild(t *testing.T) (qpd, qpctl string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binaries; not in -short mode")
	}
	e2eBinOnce.Do(func() {
		e2eBinDir, e2eBinErr = os.MkdirTemp("", "qpctl-bin")
		if e2eBinErr != nil {
			return
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		for name, src := range map[string]string{
			"qpd":   "github.com/quicproquo/quicproquo/daemon/cmd/qpd",
			"qpctl": "github.com/quicproquo/quicproquo/ctl/cmd/qpctl",
		} {
			out, err := exec.Command(goTool, "build", "-ldflags", "-X github.com/quicproquo/quicproquo/internal/version.stamped="+e2eVersion,
				"-o", filepath.Join(e2eBinDir, name), src).CombinedOutput()
			if err != nil {
				e2eBinErr = fmt.Errorf("go build %s: %w\n%s", name, err, out)
				return
			}
		}
	})
	if e2eBinErr != nil {
		t.Fatal(e2eBinErr)
	}
	return filepath.Join(e2eBinDir, "qpd"), filepath.Join(e2eBinDir, "qpctl")
}

// e2eDir is a fresh directory for a test's daemons, removed at the end.
// It lies under the system's temporary folder rather than t.TempDir, whose
// long paths can exceed the length limit of a Unix socket address.
func e2eDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "qpctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type e2eResult struct {
	stdout, stderr string
	code           int
}

func e2eRun(t *testing.T, qpctl, socket string, args ...string) e2eResult {
	t.Helper()
	return e2eRunIn(t, qpctl, socket, "", args...)
}

// e2eMust runs qpctl and fails the test unless it succeeds; it returns
// the standard output.
func e2eMust(t *testing.T, qpctl, socket string, args ...string) string {
	t.Helper()
	r := e2eRun(t, qpctl, socket, args...)
	if r.code != 0 {
		t.Fatalf("qpctl %q: %+v", args, r)
	}
	return r.stdout
}

// e2eDaemon is a qpd process.
type e2eDaemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// e2eStartQPD starts qpd and waits for its READY=1 on a notify socket.
// Without args it uses a node address where nothing listens.
func e2eStartQPD(t *testing.T, qpd, dir, socket string, args ...string) *e2eDaemon {
	t.Helper()
	notifyPath := filepath.Join(dir, "notify")
	os.Remove(notifyPath)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	if len(args) == 0 {
		args = []string{"--server", "127.0.0.1:9"}
	}
	cmd := exec.Command(qpd, append([]string{"--state-dir", filepath.Join(dir, "state"), "--socket", socket, "--log-level", "debug"}, args...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	d := &e2eDaemon{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-d.done
		}
		// A failed test shows what its daemons logged (at debug level).
		if t.Failed() {
			t.Logf("--- output of qpd at %s ---\n%s", socket, d.stderr.String())
		}
	})
	buf := make([]byte, 512)
	notify.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := notify.Read(buf)
	if err != nil {
		t.Fatalf("no readiness notification from qpd: %v\n%s", err, d.stderr.String())
	}
	if !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("notification %q has no READY=1", buf[:n])
	}
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *e2eDaemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("qpd after SIGTERM: %v\n%s", err, d.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("qpd did not stop after SIGTERM\n%s", d.stderr.String())
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestE2EQpctlAgainstQpd(t *testing.T) {
	qpd, qpctl := e2eBuild(t)
	dir := e2eDir(t)
	socket := filepath.Join(dir, "run", "qpd.sock")

	// No daemon yet.
	r := e2eRun(t, qpctl, socket, "status")
	if r.code != 3 || !strings.Contains(r.stderr, "qpd is not running") || !strings.Contains(r.stderr, "systemctl --user start qpd") {
		t.Fatalf("status without daemon: code %d, stderr %q", r.code, r.stderr)
	}

	d := e2eStartQPD(t, qpd, dir, socket)
	r = e2eRun(t, qpctl, socket, "whoami")
	if r.code != 1 || !strings.Contains(r.stderr, "qpctl register") {
		t.Fatalf("whoami before register: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "register")
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || !hex64.MatchString(id) || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("register: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "whoami")
	if r.code != 0 || strings.TrimSpace(r.stdout) != id {
		t.Fatalf("whoami: %+v, want %s", r, id)
	}
	r = e2eRun(t, qpctl, socket, "status")
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "127.0.0.1:9") {
		t.Fatalf("status: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "--json", "status")
	var st struct {
		Registered bool   `json:"registered"`
		Identity   string `json:"identity"`
		Node       struct {
			Address string `json:"address"`
			State   string `json:"state"`
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status --json: %+v (%v)", r, err)
	}
	if !st.Registered || st.Identity != id || st.Node.Address != "127.0.0.1:9" || st.Node.State == "connected" {
		t.Fatalf("status --json: %+v", st)
	}
	r = e2eRun(t, qpctl, socket, "register", "--json")
	var reg struct {
		Identity string `json:"identity"`
		Created  bool   `json:"created"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &reg); err != nil || reg.Identity != id || reg.Created {
		t.Fatalf("second register --json: %+v (%v)", r, err)
	}
	r = e2eRun(t, qpctl, socket, "create-group", "--group-id", "team")
	if r.code != 0 || !strings.Contains(r.stdout, "team") {
		t.Fatalf("create-group: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "recv", "--wait", "100ms")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("recv with nothing: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "recv", "--group-id", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("recv unknown group: %+v", r)
	}
	for _, args := range [][]string{{"send", "--msg", "x"}, {"nope"}, {"invite", "--group-id", "g"}, {"whoami", "extra"}} {
		if r := e2eRun(t, qpctl, socket, args...); r.code != 2 {
			t.Errorf("qpctl %q: code %d, want 2 (stderr %q)", args, r.code, r.stderr)
		}
	}

	// Graceful stop: exit 0 and the socket is gone.
	d.stop(t)
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after stop: %v", err)
	}
	if r := e2eRun(t, qpctl, socket, "whoami"); r.code != 3 {
		t.Errorf("whoami after stop: %+v", r)
	}

	// The identity survives a restart of the process.
	e2eStartQPD(t, qpd, dir, socket)
	r = e2eRun(t, qpctl, socket, "whoami")
	if r.code != 0 || strings.TrimSpace(r.stdout) != id {
		t.Fatalf("whoami after restart: %+v, want %s", r, id)
	}
	// State files are private.
	for _, p := range []string{filepath.Join(dir, "state"), filepath.Join(dir, "state", "qpd.db"), socket} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: open to others", p, fi.Mode().Perm())
		}
	}
}

func TestE2ESecondQpdRefused(t *testing.T) {
	qpd, _ := e2eBuild(t)
	dir := e2eDir(t)
	socket := filepath.Join(dir, "qpd.sock")
	e2eStartQPD(t, qpd, dir, socket)
	cmd := exec.Command(qpd, "--state-dir", filepath.Join(dir, "state2"), "--socket", socket, "--server", "127.0.0.1:9")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "another qpd is already serving") {
		t.Fatalf("second qpd on the same socket: %v\n%s", err, out)
	}
	cmd = exec.Command(qpd, "--state-dir", filepath.Join(dir, "state"), "--socket", filepath.Join(dir, "other.sock"), "--server", "127.0.0.1:9")
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || !strings.Contains(string(out), "in use by another qpd") {
		t.Fatalf("second qpd on the same state: %v\n%s", err, out)
	}
}
