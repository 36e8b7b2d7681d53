// Package daemontest starts real parts for qpd's tests: an in-process daemon
// (store, Backend and gRPC API on a Unix socket in a temp folder), and a node
// through testnode.
package daemontest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/api"
	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// Logger logs to stderr when QPQ_TEST_LOG is set, else discards.
func Logger() *slog.Logger { return testnode.Logger() }

// Node is a running node (see testnode).
type Node = testnode.Node

// StartNode starts a node (see testnode.StartNode).
func StartNode(t testing.TB, dir, addr string) *Node { return testnode.StartNode(t, dir, addr) }

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
	// ConsentFromContacts keeps the daemon's default invitation policy
	// (strangers' invitations wait as requests); otherwise the test
	// daemon takes every invitation, as the group tests expect.
	ConsentFromContacts bool
}

// StartDaemon runs a Backend and the API on cfg.Socket until Stop or test
// cleanup.
func StartDaemon(t testing.TB, cfg DaemonConfig) *Daemon {
	t.Helper()
	st, err := store.Open(context.Background(), cfg.StateDir)
	if err != nil {
		t.Fatalf("daemon store: %v", err)
	}
	invitations := backend.InviteAnyone
	if cfg.ConsentFromContacts {
		invitations = backend.InviteContacts
	}
	b, err := backend.New(backend.Config{Invitations: invitations,
		Store: st, Logger: Logger(), StateDir: cfg.StateDir, Version: "test",
		NodeAddr: cfg.NodeAddr, NodeCert: cfg.NodeCert, KeyPackages: backend.MLSKeyPackages{}, Groups: true,
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
