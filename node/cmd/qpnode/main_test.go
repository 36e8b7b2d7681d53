package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
)

// buildQpnode compiles this command into a temp dir once per test binary.
var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

func qpnodeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "qpnode-test-*")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "qpnode")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		out, err := exec.Command(gobin, "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func TestMain(m *testing.M) {
	code := pgtest.Run(m) // stops the PostgreSQL cluster of TestPostgresNodes afterwards
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// nodeProc is a running qpnode process.
type nodeProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	mu     *sync.Mutex
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

func (p *nodeProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// syncWriter collects stderr safely while the process runs.
type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startQpnode runs qpnode on dataDir and waits until it logs its address.
func startQpnode(t *testing.T, dataDir string, extra ...string) *nodeProc {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--ready-file", ready, "--log-level", "debug",
		"--registration-pow-bits", "8"}, extra...)
	cmd := exec.Command(qpnodeBinary(t), args...)
	p := &nodeProc{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan struct{})}
	cmd.Stderr = syncWriter{p.mu, p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qpnode: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("qpnode log:\n%s", p.log())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ready); err == nil && strings.HasSuffix(string(b), "\n") {
			p.addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("qpnode exited early: %v\n%s", p.err, p.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if p.addr == "" {
		t.Fatalf("qpnode did not become ready\n%s", p.log())
	}
	// The stderr log names the same address.
	if !strings.Contains(p.log(), "msg=listening addr="+p.addr) {
		t.Fatalf("log does not show the listening address %s:\n%s", p.addr, p.log())
	}
	return p
}

func dialNode(t *testing.T, addr, dataDir string, priv ed25519.PrivateKey) *client.Client {
	t.Helper()
	c := dialUnregistered(t, addr, dataDir, priv)
	if err := c.Register(context.Background(), ""); err != nil {
		t.Fatalf("register at %s: %v", addr, err)
	}
	return c
}

// dialUnregistered is dialNode without registering.
func dialUnregistered(t *testing.T, addr, dataDir string, priv ed25519.PrivateKey) *client.Client {
	t.Helper()
	cert, err := os.ReadFile(filepath.Join(dataDir, "server-cert.der"))
	if err != nil {
		t.Fatalf("node certificate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Config{Identity: priv, PinnedCert: cert})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// TestDurabilityAfterSIGKILL: every enqueue the node acknowledged survives a
// SIGKILL and is received exactly once, in order, after a restart.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	const n = 300
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alicePub, alicePriv := newKey(t)
	bobPub, bobPriv := newKey(t)
	_ = alicePub

	p1 := startQpnode(t, dataDir, "--max-stranger-messages", "1000") // one stranger sends them all
	alice := dialNode(t, p1.addr, dataDir, alicePriv)
	dialNode(t, p1.addr, dataDir, bobPriv).Close() // registers Bob, who may then receive
	for i := range n {
		seq, dup, err := alice.Enqueue(ctx, bobPub, fmt.Appendf(nil, "message %04d", i), fmt.Appendf(nil, "id-%d", i))
		if err != nil || dup || seq != uint64(i+1) {
			t.Fatalf("enqueue %d: seq %d dup %v err %v", i, seq, dup, err)
		}
	}
	// Kill right after the last acknowledgement: no chance to flush.
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.exited
	alice.Close()

	p2 := startQpnode(t, dataDir, "--max-stranger-messages", "1000")
	bob := dialNode(t, p2.addr, dataDir, bobPriv)
	var got []client.Envelope
	cursor := uint64(0)
	for len(got) < n+1 {
		batch, err := bob.Receive(ctx, bobPub, cursor, 64)
		if err != nil {
			t.Fatalf("receive after restart: %v", err)
		}
		if len(batch) == 0 {
			break
		}
		got = append(got, batch...)
		cursor = batch[len(batch)-1].Seq
	}
	if len(got) != n {
		t.Fatalf("received %d messages after restart, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) || string(e.Payload) != fmt.Sprintf("message %04d", i) {
			t.Fatalf("message %d after restart: seq %d %q", i, e.Seq, e.Payload)
		}
	}
	// A resend of an acknowledged message is still recognised.
	alice2 := dialNode(t, p2.addr, dataDir, alicePriv)
	seq, dup, err := alice2.Enqueue(ctx, bobPub, []byte("message 0007"), []byte("id-7"))
	if err != nil || !dup || seq != 8 {
		t.Fatalf("resend after restart: seq %d dup %v err %v; want 8, duplicate", seq, dup, err)
	}
	if deleted, err := bob.Ack(ctx, bobPub, cursor); err != nil || deleted != n {
		t.Fatalf("ack: %d, %v", deleted, err)
	}
	if rest, err := bob.Receive(ctx, bobPub, 0, 0); err != nil || len(rest) != 0 {
		t.Fatalf("after ack: %d messages, %v", len(rest), err)
	}
}

// TestGracefulShutdownAndMetrics: SIGTERM ends the node cleanly, and the
// metrics listener serves the node's counters.
func TestGracefulShutdownAndMetrics(t *testing.T) {
	dataDir := t.TempDir()
	p := startQpnode(t, dataDir, "--metrics-listen", "127.0.0.1:0")
	_, priv := newKey(t)
	c := dialNode(t, p.addr, dataDir, priv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}

	var metricsAddr string
	sc := bufio.NewScanner(strings.NewReader(p.log()))
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), `msg="metrics listening" addr=`); ok {
			metricsAddr = strings.TrimSpace(rest)
		}
	}
	if metricsAddr == "" {
		t.Fatalf("no metrics address in the log:\n%s", p.log())
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `qpnode_requests_total{method="ping",result="ok"} 1`) {
		t.Fatalf("metrics do not count the ping:\n%s", body)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("qpnode exit after SIGTERM: %v\n%s", p.err, p.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("qpnode did not exit after SIGTERM")
	}
	if !strings.Contains(p.log(), "shut down") {
		t.Fatalf("no shutdown line in the log:\n%s", p.log())
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not see the connection end")
	}
}

func TestFlagsAndEnv(t *testing.T) {
	t.Setenv("QPQ_LISTEN", "127.0.0.1:9999")
	t.Setenv("QPQ_DATA_DIR", "/tmp/x")
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:9999" || o.dataDir != "/tmp/x" || o.tlsCert != "/tmp/x/server-cert.der" || o.tlsKey != "/tmp/x/server-key.der" {
		t.Fatalf("env defaults not applied: %+v", o)
	}
	o, err = parseFlags([]string{"--listen", "127.0.0.1:1", "--tls-cert", "/c"}, io.Discard)
	if err != nil || o.listen != "127.0.0.1:1" || o.tlsCert != "/c" {
		t.Fatalf("flags do not win over env: %+v %v", o, err)
	}
	if o.maxRevokedDevices != server.DefaultMaxRevokedDevices {
		t.Fatalf("--max-revoked-devices default %d", o.maxRevokedDevices)
	}
	if o, err := parseFlags([]string{"--max-revoked-devices", "9"}, io.Discard); err != nil || o.maxRevokedDevices != 9 {
		t.Fatalf("--max-revoked-devices 9: %+v %v", o, err)
	}
	if _, err := parseFlags([]string{"--max-revoked-devices", "0"}, io.Discard); err == nil {
		t.Fatal("--max-revoked-devices 0 accepted")
	}
	if _, err := parseFlags([]string{"stray"}, io.Discard); err == nil {
		t.Fatal("stray argument accepted")
	}
	if _, err := newLogger("loud", io.Discard); err == nil {
		t.Fatal("bad log level accepted")
	}
}

// TestPostgresNodes: two qpnode processes with --postgres on one database
// serve the same queues (what is enqueued through one is received through
// the other, and pushed to a subscriber there), and keep no database of
// their own in the data directory.
func TestPostgresNodes(t *testing.T) {
	conn := pgtest.NewDatabase(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	p1 := startQpnode(t, dir1, "--postgres", conn)
	t.Setenv("QPQ_POSTGRES", conn) // the second node takes it from the environment
	p2 := startQpnode(t, dir2)
	for _, p := range []*nodeProc{p1, p2} {
		if !strings.Contains(p.log(), "backend=postgres") {
			t.Fatalf("qpnode did not open the PostgreSQL store:\n%s", p.log())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, alicePriv := newKey(t)
	bobPub, bobPriv := newKey(t)
	alice := dialNode(t, p1.addr, dir1, alicePriv)
	bob := dialNode(t, p2.addr, dir2, bobPriv)

	pushed := make(chan client.Envelope, 4)
	sub, err := bob.Subscribe(ctx, bobPub, 0, func(ctx context.Context, batch []client.Envelope) error {
		for _, e := range batch {
			pushed <- e
		}
		return nil
	})
	if err != nil {
		t.Fatalf("subscribe on the second node: %v", err)
	}
	defer sub.Cancel(ctx)
	seq, _, err := alice.Enqueue(ctx, bobPub, []byte("across nodes"), []byte("x1"))
	if err != nil || seq != 1 {
		t.Fatalf("enqueue on the first node: seq %d, %v", seq, err)
	}
	select {
	case e := <-pushed:
		if e.Seq != 1 || string(e.Payload) != "across nodes" {
			t.Fatalf("pushed on the second node: seq %d %q", e.Seq, e.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no push on the second node within 10s\nnode 2 log:\n%s", p2.log())
	}
	if msgs, err := bob.Receive(ctx, bobPub, 0, 0); err != nil || len(msgs) != 1 {
		t.Fatalf("receive on the second node: %d messages, %v", len(msgs), err)
	}
	for _, dir := range []string{dir1, dir2} {
		if _, err := os.Stat(filepath.Join(dir, "node.db")); !os.IsNotExist(err) {
			t.Fatalf("%s/node.db exists (err %v): a PostgreSQL node keeps no SQLite database", dir, err)
		}
	}
}

func TestVersionAndHelpOnStdout(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "qpnode ") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("--version printed %q", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"--help"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Usage: qpnode") || !strings.Contains(out.String(), "-listen") {
		t.Fatalf("--help printed %q", out.String())
	}
}
