package interop

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file runs interop/tsmls/peer.mjs (a ts-mls group member) as a child
// process and speaks its line-based JSON protocol.

// tsmlsDirEnv names the folder whose node_modules hold ts-mls and
// @noble/curves; tsmlsRequiredEnv=1 turns a missing node or folder into a
// test failure instead of a skip (CI sets it).
const (
	tsmlsDirEnv      = "QPQ_TSMLS_DIR"
	tsmlsRequiredEnv = "QPQ_TSMLS_REQUIRED"
)

// tsmlsSetup returns the node binary and the ts-mls folder, or skips (or,
// when required, fails) the test with the reason they are missing.
func tsmlsSetup(t *testing.T) (node, dir string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv(tsmlsRequiredEnv) == "1" {
			t.Fatalf("%s (and %s=1 requires the ts-mls cross test)", msg, tsmlsRequiredEnv)
		}
		t.Skipf("skipping the ts-mls cross test: %s", msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed: %v", err)
	}
	dir = os.Getenv(tsmlsDirEnv)
	if dir == "" {
		missing("%s is unset (point it at a folder where `npm install ts-mls@1.6.4 @noble/curves@2.0.1` ran)", tsmlsDirEnv)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"ts-mls", filepath.Join("@noble", "curves")} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			missing("%s has no node_modules/%s: %v", dir, pkg, err)
		}
	}
	return node, dir
}

// tsmlsPeer is one running peer.mjs.
type tsmlsPeer struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	mu     sync.Mutex
	nextID int
}

func startTSMLSPeer(t *testing.T, name string, suite uint32) *tsmlsPeer {
	t.Helper()
	node, dir := tsmlsSetup(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "interop", "tsmls", "peer.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), tsmlsDirEnv+"="+dir, "NODE_PATH="+filepath.Join(dir, "node_modules"),
		fmt.Sprintf("QPQ_TSMLS_SUITE=%d", suite))
	p := &tsmlsPeer{t: t, name: name, cmd: cmd, lines: make(chan string, 16), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	p.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ts-mls peer: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() && p.stderr.Len() > 0 {
			t.Logf("ts-mls peer %s stderr:\n%s", name, p.stderr.String())
		}
	})
	hello, err := p.call("hello", nil)
	if err != nil {
		t.Fatalf("ts-mls peer %s does not answer: %v", name, err)
	}
	if hello["name"] != "ts-mls" || hello["suite"] != float64(suite) {
		t.Fatalf("ts-mls peer %s says hello %v, want suite %d", name, hello, suite)
	}
	return p
}

// lockedBuffer collects the peer's stderr; it is written by the process
// plumbing and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// errPeer is what the peer reports when ts-mls refuses a command.
var errPeer = errors.New("ts-mls peer refused")

// call sends one command and waits (up to 60 s) for its answer.
func (p *tsmlsPeer) call(cmd string, args map[string]any) (map[string]any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	req := map[string]any{"id": p.nextID, "cmd": cmd}
	for k, v := range args {
		req[k] = v
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("write to ts-mls peer %s: %w", p.name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out string
	select {
	case l, ok := <-p.lines:
		if !ok {
			return nil, fmt.Errorf("ts-mls peer %s exited: %s", p.name, p.stderr.String())
		}
		out = l
	case <-ctx.Done():
		return nil, fmt.Errorf("ts-mls peer %s: no answer to %s", p.name, cmd)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return nil, fmt.Errorf("ts-mls peer %s answered %q: %w", p.name, out, err)
	}
	if id, _ := res["id"].(float64); int(id) != p.nextID {
		return nil, fmt.Errorf("ts-mls peer %s answered id %v, want %d", p.name, res["id"], p.nextID)
	}
	if ok, _ := res["ok"].(bool); !ok {
		return res, fmt.Errorf("%w: %s: %v", errPeer, cmd, res["error"])
	}
	return res, nil
}

// must is call that fails the test on error.
func (p *tsmlsPeer) must(cmd string, args map[string]any) map[string]any {
	p.t.Helper()
	res, err := p.call(cmd, args)
	if err != nil {
		p.t.Fatalf("ts-mls %s: %v", p.name, err)
	}
	return res
}

// bytesOf decodes the hex field key of a peer answer.
func (p *tsmlsPeer) bytesOf(res map[string]any, key string) []byte {
	p.t.Helper()
	s, ok := res[key].(string)
	if !ok {
		p.t.Fatalf("ts-mls %s: answer has no %s: %v", p.name, key, res)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		p.t.Fatalf("ts-mls %s: %s is not hex: %v", p.name, key, err)
	}
	return b
}
