package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

// internalNode is a node for the package's internal tests, which need the
// Server itself: a SQLite store in a temp dir (seen by the server through
// wrap, when not nil), QUIC on loopback, and a client connected as a fresh
// identity. Everything stops at cleanup.
type internalNode struct {
	srv *Server
	st  *sqlite.Store
	c   *client.Client
	pub ed25519.PublicKey
	ctx context.Context // ends after 30s
}

func startInternalNode(t *testing.T, wrap func(*sqlite.Store) store.Store) *internalNode {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "node.db"), store.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "c.der"), filepath.Join(dir, "k.der"))
	if err != nil {
		t.Fatal(err)
	}
	var view store.Store = st
	if wrap != nil {
		view = wrap(st)
	}
	srv, err := New(Config{Store: view})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0", cert)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { srv.Serve(sctx, ln); close(served) }()
	t.Cleanup(func() { scancel(); <-served; ln.Close() })

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, ln.Addr().String(), client.Config{Identity: priv, PinnedCert: cert.Certificate[0]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &internalNode{srv: srv, st: st, c: c, pub: pub, ctx: ctx}
}
