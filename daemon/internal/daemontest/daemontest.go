// Package daemontest starts real parts for qpd's tests: a node (node/server
// over a SQLite store, QUIC on loopback) and an in-process daemon (store,
// Backend and gRPC API on a Unix socket in a temp folder).
package daemontest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/api"
	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/server"
	nodestore "github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

// Logger logs to stderr when QPQ_TEST_LOG is set, else discards.
func Logger() *slog.Logger {
	if os.Getenv("QPQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Node is a running node.
type Node struct {
	Addr    string
	CertDER []byte
	Dir     string
	stop    func()
}

// StartNode starts a node with its state in dir (certificate included, so a
// restart on the same dir keeps the certificate) listening on addr
// ("127.0.0.1:0" for any port).
func StartNode(t testing.TB, dir, addr string) *Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(dir, "node.db"), nodestore.Limits{}, Logger())
	if err != nil {
		t.Fatalf("node store: %v", err)
	}
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.der"))
	if err != nil {
		t.Fatalf("node cert: %v", err)
	}
	srv, err := server.New(server.Config{Store: st, Logger: Logger()})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	var ln interface {
		Close() error
	}
	// A node restarted on its old address may find the port still held for
	// a moment by the previous listener's connections.
	qln, err := server.Listen(addr, cert)
	for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		qln, err = server.Listen(addr, cert)
	}
	if err != nil {
		cancel()
		st.Close()
		t.Fatalf("node listen: %v", err)
	}
	ln = qln
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, qln) }()
	n := &Node{Addr: qln.Addr().String(), CertDER: cert.Certificate[0], Dir: dir}
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("node Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("node Serve did not return")
		}
		ln.Close()
		st.Close()
	}
	t.Cleanup(n.stop)
	return n
}

// Stop stops the node (idempotent).
func (n *Node) Stop() { n.stop() }

// Daemon is an in-process qpd.
type Daemon struct {
	Socket   string
	StateDir string
	Backend  *backend.Backend
	stop     func()
}

// DaemonConfig configures StartDaemon.
type DaemonConfig struct {
	StateDir string // required
	Socket   string // required
	NodeAddr string // empty: no node
	NodeCert []byte
}

// StartDaemon runs a Backend and the API on cfg.Socket until Stop or test
// cleanup.
func StartDaemon(t testing.TB, cfg DaemonConfig) *Daemon {
	t.Helper()
	st, err := store.Open(context.Background(), cfg.StateDir)
	if err != nil {
		t.Fatalf("daemon store: %v", err)
	}
	b, err := backend.New(backend.Config{
		Store: st, Logger: Logger(), StateDir: cfg.StateDir, Version: "test",
		NodeAddr: cfg.NodeAddr, NodeCert: cfg.NodeCert,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, DialTimeout: 2 * time.Second,
	})
	if err != nil {
		st.Close()
		t.Fatalf("backend.New: %v", err)
	}
	ln, err := api.ListenSocket(cfg.Socket)
	if err != nil {
		st.Close()
		t.Fatalf("ListenSocket: %v", err)
	}
	gs, _ := api.NewGRPCServer(b, api.Options{Logger: Logger()})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- gs.Serve(ln) }()
	d := &Daemon{Socket: cfg.Socket, StateDir: cfg.StateDir, Backend: b}
	stopped := false
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		gs.Stop()
		<-serveDone
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("backend Run: %v", err)
		}
		st.Close()
	}
	t.Cleanup(d.stop)
	return d
}

// Stop stops the daemon (idempotent).
func (d *Daemon) Stop() { d.stop() }

// Dial connects a typed client to the daemon; closed at cleanup.
func (d *Daemon) Dial(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), d.Socket)
	if err != nil {
		t.Fatalf("client.Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ShortTempDir is a fresh folder with a short path (Unix socket paths are
// limited to about 100 bytes), removed at cleanup.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "qpd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
