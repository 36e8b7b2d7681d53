// Package testnode starts a real node for tests: node/server over a SQLite
// store, QUIC on loopback.
package testnode

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// PowDifficulty is the registration proof of work of a test node: a few
// hashes, so that every test identity can register at once.
const PowDifficulty = 4

// Limits are a test node's store limits: the defaults, with the quotas a
// node runs with.
func Limits() nodestore.Limits {
	return nodestore.Limits{GroupReserve: nodestore.DefaultGroupReserve,
		MaxStrangerMessages: nodestore.DefaultMaxStrangerMessages, MaxStrangerBytes: nodestore.DefaultMaxStrangerBytes}
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
	return StartNodeWrapped(t, dir, addr, nil)
}

// StartNodeWrapped is StartNode whose server sees wrap(store) instead of
// the SQLite store itself when wrap is not nil: a test can make chosen
// store calls fail the way a broken disk would.
func StartNodeWrapped(t testing.TB, dir, addr string, wrap func(nodestore.Store) nodestore.Store) *Node {
	t.Helper()
	return startNode(t, dir, addr, wrap, nil)
}

// StartNodeWithoutFanOutBatch is StartNodeWrapped for a node that lacks
// fanOutBatch, as one older than the method does.
func StartNodeWithoutFanOutBatch(t testing.TB, dir, addr string, wrap func(nodestore.Store) nodestore.Store) *Node {
	t.Helper()
	return startNode(t, dir, addr, wrap, func(cfg *server.Config) { cfg.WithoutFanOutBatch = true })
}

// StartBenchNode is StartNode without the per-identity request rate limit
// (server.Config.RateLimit): a throughput benchmark from one identity
// then measures the machine, not the limit (200 requests a second by
// default, each message of a batch counting as one).
func StartBenchNode(t testing.TB, dir, addr string) *Node {
	t.Helper()
	return startNode(t, dir, addr, nil, func(cfg *server.Config) {
		cfg.RateLimit, cfg.RateBurst = 1e9, 1<<30
	})
}

func startNode(t testing.TB, dir, addr string, wrap func(nodestore.Store) nodestore.Store, tune func(*server.Config)) *Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(dir, "node.db"), Limits(), Logger())
	if err != nil {
		t.Fatalf("node store: %v", err)
	}
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.der"))
	if err != nil {
		t.Fatalf("node cert: %v", err)
	}
	var view nodestore.Store = st
	if wrap != nil {
		view = wrap(st)
	}
	// Every simulated user of a test connects from loopback.
	// Registration is open, as on a personal node, at a token proof of
	// work; tests that invite many peers at once are not held by the
	// KeyPackage fetch limits.
	cfg := server.Config{Store: view, Logger: Logger(), MaxConnsPerIP: 100000,
		Registration: server.RegistrationOpen, PowDifficulty: PowDifficulty,
		FetchBurst: 100000, TargetFetchBurst: 100000}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := server.New(cfg)
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
