package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"path/filepath"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
)

// pqTestNode starts a real node that requires the hybrid TLS key exchange.
func pqTestNode(t *testing.T) (addr string, certDER []byte) {
	return startClientTestNode(t, server.ListenOptions{RequirePQTLS: true})
}

// TestDialKeyExchange: our client negotiates X25519MLKEM768 with a node
// by default and with a node that requires it; a classical-only client is
// refused by the latter.
func TestDialKeyExchange(t *testing.T) {
	ctx := clientTestCtx(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for name, start := range map[string]func(*testing.T) (string, []byte){"default node": clientTestNode, "node requiring PQ": pqTestNode} {
		addr, cert := start(t)
		for _, require := range []bool{false, true} {
			c, err := client.Dial(ctx, addr, client.Config{Identity: priv, PinnedCert: cert, RequirePQTLS: require})
			if err != nil {
				t.Fatalf("%s, require %v: %v", name, require, err)
			}
			if _, err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if got := c.KeyExchange(); got != tls.X25519MLKEM768 {
				t.Fatalf("%s, require %v: negotiated %v", name, require, got)
			}
			c.Close()
		}
		if name == "node requiring PQ" {
			conf, _ := transport.ClientTLSConfig(nil, func([]byte) error { return nil })
			conf.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
			if conn, err := quic.DialAddr(ctx, addr, conf, transport.QUICConfig()); err == nil {
				conn.CloseWithError(0, "")
				t.Fatal("classical-only client served")
			} else if !transport.IsKeyExchangeRefusal(err) {
				t.Fatalf("classical-only client: %v", err)
			}
		}
	}
}

// TestDialRequirePQRefusesClassicalNode plays a classical-only node (the
// node's TLS configuration without the hybrid group): a client that
// requires the hybrid refuses it with ErrClassicalKeyExchange (that a
// default client falls back to X25519 is TestKeyExchangeRequiredRefusesClassical
// in internal/transport).
func TestDialRequirePQRefusesClassicalNode(t *testing.T) {
	ctx := clientTestCtx(t)
	dir := t.TempDir()
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "c.der"), filepath.Join(dir, "k.der"))
	if err != nil {
		t.Fatal(err)
	}
	conf := transport.ServerTLSConfig(cert)
	conf.CurvePreferences = []tls.CurveID{tls.X25519}
	ln, err := quic.ListenAddr("127.0.0.1:0", conf, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			c.CloseWithError(0, "")
		}
	}()
	_, err = client.Dial(ctx, ln.Addr().String(), client.Config{PinnedCert: cert.Certificate[0], RequirePQTLS: true})
	if !errors.Is(err, transport.ErrClassicalKeyExchange) {
		t.Fatalf("dial a classical node requiring PQ: %v", err)
	}
	t.Logf("refusal: %v", err)
}
