package server

import (
	"bytes"
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

// panickyStore is the SQLite store with a bug planted: GroupState of one
// group id panics, as a defect reached by crafted input would.
type panickyStore struct {
	*sqlite.Store
	trigger []byte
}

func (p panickyStore) GroupState(ctx context.Context, groupID []byte) (store.GroupState, error) {
	if bytes.Equal(groupID, p.trigger) {
		var none []int
		_ = none[len(groupID)]
	}
	return p.Store.GroupState(ctx, groupID)
}

// TestCallPanicFailsOnlyThatCall: a panic while serving a call fails the
// call with an internal error; the node, and the same connection, go on.
func TestCallPanicFailsOnlyThatCall(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "node.db"), store.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "c.der"), filepath.Join(dir, "k.der"))
	if err != nil {
		t.Fatal(err)
	}
	trigger := []byte("boom")
	srv, err := New(Config{Store: panickyStore{Store: st, trigger: trigger}})
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
	if _, err := c.GroupState(ctx, trigger); !errors.Is(err, client.ErrInternal) {
		t.Fatalf("GroupState of the planted id: %v, want ErrInternal", err)
	}
	if _, err := c.GroupState(ctx, []byte("other")); err != nil {
		t.Fatalf("GroupState after the panic: %v", err)
	}
	if _, _, err := c.Enqueue(ctx, pub, []byte("still here"), nil); err != nil {
		t.Fatalf("enqueue after the panic: %v", err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after the panic: %v", err)
	}
}
