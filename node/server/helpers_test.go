package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

// testNode is a node serving on loopback with a SQLite store in a temp dir.
type testNode struct {
	addr    string
	certDER []byte
	store   *sqlite.Store
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("QPQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startTestNode starts a node; cfg's Store is filled in. It stops at cleanup.
func startTestNode(t testing.TB, cfg server.Config, limits store.Limits) *testNode {
	t.Helper()
	return startWrappedNode(t, cfg, limits, nil)
}

// startWrappedNode is startTestNode whose server sees wrap(store) instead of
// the SQLite store itself when wrap is not nil.
func startWrappedNode(t testing.TB, cfg server.Config, limits store.Limits, wrap func(store.Store) store.Store) *testNode {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "node.db"), limits, testLogger(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	cfg.Store = st
	if wrap != nil {
		cfg.Store = wrap(st)
	}
	n := serveNode(t, cfg, st.Close)
	n.store = st
	return n
}

// serveNode serves cfg (its Store set) on loopback with a fresh certificate
// until cleanup, which stops the server and then calls closeStore.
func serveNode(t testing.TB, cfg server.Config, closeStore func() error) *testNode {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { closeStore() })
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.der"))
	if err != nil {
		cancel()
		t.Fatalf("server cert: %v", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := server.New(cfg)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	ln, err := server.Listen("127.0.0.1:0", cert)
	if err != nil {
		cancel()
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
		ln.Close()
	})
	return &testNode{addr: ln.Addr().String(), certDER: cert.Certificate[0]}
}

// testIdentity is a fresh Ed25519 identity.
type testIdentity struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newTestIdentity(t testing.TB) testIdentity {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testIdentity{pub, priv}
}

// dial connects as id (nil priv: anonymous), pinning the node's certificate.
func (n *testNode) dial(t testing.TB, priv ed25519.PrivateKey) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.addr, client.Config{Identity: priv, PinnedCert: n.certDER, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tlsVarint / tlsOpaque write RFC 9420 §2.1.2 vectors for test packages.
func tlsOpaque(b, v []byte) []byte {
	n := len(v)
	switch {
	case n < 1<<6:
		b = append(b, byte(n))
	case n < 1<<14:
		b = append(b, byte(n>>8)|0x40, byte(n))
	default:
		b = append(b, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, v...)
}

// testKeyPackage builds KeyPackage-shaped bytes with a BasicCredential for
// identity; tag makes packages distinct. Only the prefix up to the
// credential is meaningful to the node.
func testKeyPackage(identity []byte, tag byte) []byte {
	b := []byte{0, 1, 0, 1}
	b = tlsOpaque(b, bytes.Repeat([]byte{tag}, 32)) // init_key
	b = tlsOpaque(b, bytes.Repeat([]byte{tag ^ 0xff}, 32))
	b = tlsOpaque(b, identity) // signature_key
	b = append(b, 0, 1)        // basic credential
	b = tlsOpaque(b, identity)
	b = append(b, 0, 0, tag) // rest of the LeafNode, extensions, signature
	return b
}

// wantErr fails unless err matches target.
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// checkServing asserts that a fresh client can still use the node.
func checkServing(t testing.TB, n *testNode) {
	t.Helper()
	id := newTestIdentity(t)
	c := n.dial(t, id.priv)
	ctx := testCtx(t)
	seq, _, err := c.Enqueue(ctx, id.pub, []byte("still here"), nil)
	if err != nil {
		t.Fatalf("node stopped serving: enqueue: %v", err)
	}
	msgs, err := c.Receive(ctx, id.pub, 0, 0)
	if err != nil || len(msgs) != 1 || msgs[0].Seq != seq || string(msgs[0].Payload) != "still here" {
		t.Fatalf("node stopped serving: receive: %v %+v", err, msgs)
	}
}
