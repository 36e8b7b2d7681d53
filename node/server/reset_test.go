package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

// The reset key is a function of the TLS key alone: the same after a
// restart or a renewal of the certificate, another for another key.
func TestStatelessResetKey(t *testing.T) {
	_, a, _ := ed25519.GenerateKey(rand.Reader)
	_, b, _ := ed25519.GenerateKey(rand.Reader)
	ka, err := server.StatelessResetKey(a)
	if err != nil {
		t.Fatal(err)
	}
	ka2, _ := server.StatelessResetKey(a)
	kb, _ := server.StatelessResetKey(b)
	if *ka != *ka2 {
		t.Fatal("two derivations from one key differ")
	}
	if *ka == *kb {
		t.Fatal("two keys give one reset key")
	}
	if _, err := server.StatelessResetKey("not a key"); err == nil {
		t.Fatal("a string made a reset key")
	}
}

// A listener that ends without closing its connections (a killed node)
// and is opened again on its address with the same key resets them: the
// client's next call fails at once, not after the idle timeout.
func TestListenResetEndsConnectionsOfAnEarlierRun(t *testing.T) {
	dir := t.TempDir()
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.der"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "node.db"), store.Limits{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := server.StatelessResetKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	start := func(addr string) (string, func()) {
		ln, udp, err := server.ListenReset(addr, transport.ServerTLSConfig(cert), key)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(server.Config{Store: st, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, ln) }()
		// Ending the transport first drops its connections without a
		// word to the peers, as a kill does.
		return ln.Addr().String(), func() { udp.Close(); cancel(); <-served; ln.Close() }
	}
	addr, kill := start("127.0.0.1:0")
	c, err := nodeclient.Dial(context.Background(), addr, nodeclient.Config{PinnedCert: cert.Certificate[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	kill()
	_, kill = start(addr)
	defer kill()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Ping(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call on the earlier run's connection: %v, want it reset", err)
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the connection did not end")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("the reset took %v", took)
	}
}
