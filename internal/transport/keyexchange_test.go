package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// kxServer serves QUIC on loopback with the node's TLS configuration (mod
// changes it) and reports the key exchange group of each accepted
// connection on the returned channel.
func kxServer(t *testing.T, mod func(*tls.Config)) (string, <-chan tls.CurveID) {
	t.Helper()
	dir := t.TempDir()
	cert, _, err := LoadOrCreateServerCert(filepath.Join(dir, "c.der"), filepath.Join(dir, "k.der"))
	if err != nil {
		t.Fatal(err)
	}
	conf := ServerTLSConfig(cert)
	mod(conf)
	ln, err := quic.ListenAddr("127.0.0.1:0", conf, QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan tls.CurveID, 4)
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			got <- conn.ConnectionState().TLS.CurveID
		}
	}()
	return ln.Addr().String(), got
}

// kxDial connects to addr and returns the group the client negotiated.
// The connection stays open until the test ends, so the server finishes
// its side of the handshake too.
func kxDial(t *testing.T, addr string, mod func(*tls.Config)) (tls.CurveID, error) {
	t.Helper()
	conf, err := ClientTLSConfig(nil, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	mod(conf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, conf, QUICConfig())
	if err != nil {
		return 0, err
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn.ConnectionState().TLS.CurveID, nil
}

func classicalOnly(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256} }
func unchanged(*tls.Config)       {}

// TestKeyExchangeNegotiated shows the group both sides negotiated: by
// default the hybrid X25519MLKEM768, with or without requiring it.
func TestKeyExchangeNegotiated(t *testing.T) {
	for _, c := range []struct {
		name           string
		server, client func(*tls.Config)
	}{
		{"default", unchanged, unchanged},
		{"server requires", func(c *tls.Config) { RequireHybridKeyExchange(c, nil) }, unchanged},
		{"both require", func(c *tls.Config) { RequireHybridKeyExchange(c, nil) }, func(c *tls.Config) { RequireHybridKeyExchange(c, nil) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, accepted := kxServer(t, c.server)
			clientSide, err := kxDial(t, addr, c.client)
			if err != nil {
				t.Fatal(err)
			}
			var serverSide tls.CurveID
			select {
			case serverSide = <-accepted:
			case <-time.After(20 * time.Second):
				t.Fatal("the server did not accept the connection")
			}
			t.Logf("negotiated: client %v, server %v", clientSide, serverSide)
			if clientSide != tls.X25519MLKEM768 || serverSide != tls.X25519MLKEM768 {
				t.Fatalf("client negotiated %v, server %v; want X25519MLKEM768", clientSide, serverSide)
			}
		})
	}
}

// TestKeyExchangeRequiredRefusesClassical plays a classical-only peer
// against each side that requires the hybrid: a client offering only
// X25519 and P-256 is refused by the node (which logs why), and a client
// requiring the hybrid refuses a classical-only node. Without the
// requirement the same classical client is served (over X25519).
func TestKeyExchangeRequiredRefusesClassical(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	addr, accepted := kxServer(t, func(c *tls.Config) { RequireHybridKeyExchange(c, log) })
	if _, err := kxDial(t, addr, classicalOnly); err == nil {
		t.Fatal("classical-only client served by a node that requires the hybrid")
	} else if !IsKeyExchangeRefusal(err) {
		t.Fatalf("refusal is not a handshake failure: %v", err)
	}
	// The node's handshake goroutine logs the refusal; it may do so after
	// the client has seen it.
	logged := func(s string) bool {
		return strings.Contains(s, "refusing a client without hybrid post-quantum TLS key exchange") && strings.Contains(s, "X25519")
	}
	for deadline := time.Now().Add(5 * time.Second); !logged(logs.String()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node log: %q", logs.String())
		}
	}
	select {
	case id := <-accepted:
		t.Fatalf("node accepted a connection over %v", id)
	default:
	}

	addr, _ = kxServer(t, classicalOnly)
	if _, err := kxDial(t, addr, func(c *tls.Config) { RequireHybridKeyExchange(c, nil) }); !IsKeyExchangeRefusal(err) {
		t.Fatalf("client requiring the hybrid against a classical node: %v", err)
	}
	id, err := kxDial(t, addr, unchanged)
	if err != nil || id != tls.X25519 {
		t.Fatalf("default client against a classical node: %v, %v", id, err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger on another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
