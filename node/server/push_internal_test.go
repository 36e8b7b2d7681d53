package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

// TestPushStoreFailureEndsSubscription: when the store fails under a push,
// the node tells the subscriber (MessageSink.ended) instead of going quiet.
func TestPushStoreFailureEndsSubscription(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "node.db"), store.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "c.der"), filepath.Join(dir, "k.der"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Store: st})
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
	defer func() { scancel(); <-served; ln.Close() }()

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	c, err := client.Dial(ctx, ln.Addr().String(), client.Config{Identity: priv, PinnedCert: cert.Certificate[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, pub, 0, func(context.Context, []client.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	srv.notifier.notify(pub) // as an enqueue would
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber not told that the push stopped")
	}
	if !errors.Is(sub.Err(), client.ErrInternal) {
		t.Fatalf("Err = %v, want ErrInternal", sub.Err())
	}
	// The connection itself is still up.
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}
