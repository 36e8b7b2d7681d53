package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

// clientTestNode starts a node on loopback with a fresh certificate and a
// SQLite store, and returns its address and certificate.
func clientTestNode(t *testing.T) (addr string, certDER []byte) {
	return startClientTestNode(t, server.ListenOptions{})
}

// startClientTestNode is clientTestNode with listen options.
func startClientTestNode(t *testing.T, o server.ListenOptions) (addr string, certDER []byte) {
	t.Helper()
	return clientTestNodeWith(t, t.TempDir(), o)
}

// clientTestNodeIn serves a node whose certificate files are in dir.
func clientTestNodeIn(t *testing.T, dir string) (addr string, certDER []byte) {
	t.Helper()
	return clientTestNodeWith(t, dir, server.ListenOptions{})
}

func clientTestNodeWith(t *testing.T, dir string, o server.ListenOptions) (addr string, certDER []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(dir, "node.db"), store.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := transport.LoadOrCreateServerCert(filepath.Join(dir, "c.der"), filepath.Join(dir, "k.der"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := server.ListenWith("127.0.0.1:0", cert, o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; ln.Close(); st.Close() })
	return ln.Addr().String(), cert.Certificate[0]
}

func clientTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDialPinnedCert(t *testing.T) {
	addr, cert := clientTestNode(t)
	ctx := clientTestCtx(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	c, err := client.Dial(ctx, addr, client.Config{Identity: priv, PinnedCert: cert})
	if err != nil {
		t.Fatalf("dial with the right pin: %v", err)
	}
	defer c.Close()
	if !bytes.Equal(c.ServerCertificate(), cert) {
		t.Fatal("ServerCertificate is not the node's certificate")
	}
	if !bytes.Equal(c.Identity(), priv.Public().(ed25519.PublicKey)) {
		t.Fatal("Identity is not the configured key")
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if _, err := c.Ping(ctx); err == nil {
		t.Fatal("ping after Close succeeded")
	}
}

func TestDialPinMismatch(t *testing.T) {
	addr, _ := clientTestNode(t)
	_, otherCert := clientTestNode(t)
	ctx := clientTestCtx(t)

	_, err := client.Dial(ctx, addr, client.Config{PinnedCert: otherCert})
	if !errors.Is(err, client.ErrServerCertChanged) {
		t.Fatalf("dial with another node's cert pinned: %v, want ErrServerCertChanged", err)
	}
	if !strings.Contains(err.Error(), "pin the new fingerprint") {
		t.Fatalf("error does not say how to re-pin: %v", err)
	}

	fp, _ := client.ParseFingerprint(client.Fingerprint(otherCert))
	_, err = client.Dial(ctx, addr, client.Config{PinnedFingerprint: fp})
	if !errors.Is(err, client.ErrServerCertChanged) {
		t.Fatalf("dial with a wrong fingerprint: %v, want ErrServerCertChanged", err)
	}
}

func TestDialPinnedFingerprint(t *testing.T) {
	addr, cert := clientTestNode(t)
	ctx := clientTestCtx(t)
	// The form a log line or an operator would show: hex with colons.
	hexfp := client.Fingerprint(cert)
	var withColons []string
	for i := 0; i < len(hexfp); i += 2 {
		withColons = append(withColons, hexfp[i:i+2])
	}
	fp, err := client.ParseFingerprint(strings.Join(withColons, ":"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, addr, client.Config{PinnedFingerprint: fp})
	if err != nil {
		t.Fatalf("dial with the right fingerprint: %v", err)
	}
	c.Close()
	if _, err := client.ParseFingerprint("abcd"); err == nil {
		t.Fatal("short fingerprint accepted")
	}
}

func TestDialTOFU(t *testing.T) {
	addr, cert := clientTestNode(t)
	ctx := clientTestCtx(t)
	pin := filepath.Join(t.TempDir(), "pins", "node.der")

	c, err := client.Dial(ctx, addr, client.Config{VerifyServer: client.TOFUFile(pin)})
	if err != nil {
		t.Fatalf("first use: %v", err)
	}
	c.Close()
	saved, err := os.ReadFile(pin)
	if err != nil || !bytes.Equal(saved, cert) {
		t.Fatalf("first use did not remember the certificate: %v", err)
	}
	if fi, err := os.Stat(pin); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pin file mode: %v %v", fi.Mode(), err)
	}
	c, err = client.Dial(ctx, addr, client.Config{VerifyServer: client.TOFUFile(pin)})
	if err != nil {
		t.Fatalf("second use: %v", err)
	}
	c.Close()

	// A node with another certificate at the pinned name is refused.
	other, _ := clientTestNode(t)
	_, err = client.Dial(ctx, other, client.Config{VerifyServer: client.TOFUFile(pin)})
	if !errors.Is(err, client.ErrServerCertChanged) {
		t.Fatalf("changed certificate: %v, want ErrServerCertChanged", err)
	}
	if !strings.Contains(err.Error(), "delete "+pin) {
		t.Fatalf("error does not say how to re-pin: %v", err)
	}
	// Following the advice re-pins.
	os.Remove(pin)
	c, err = client.Dial(ctx, other, client.Config{VerifyServer: client.TOFUFile(pin)})
	if err != nil {
		t.Fatalf("after deleting the pin: %v", err)
	}
	c.Close()
}

func TestDialConfig(t *testing.T) {
	ctx := clientTestCtx(t)
	if _, err := client.Dial(ctx, "127.0.0.1:1", client.Config{}); err == nil {
		t.Fatal("dial without any pin accepted")
	}
	if _, err := client.Dial(ctx, "127.0.0.1:1", client.Config{PinnedCert: []byte{1}, PinnedFingerprint: make([]byte, 32)}); err == nil {
		t.Fatal("dial with two pins accepted")
	}
	if _, err := client.Dial(ctx, "127.0.0.1:1", client.Config{PinnedFingerprint: make([]byte, 31)}); err == nil {
		t.Fatal("31-byte fingerprint accepted")
	}
	if _, err := client.Dial(ctx, "127.0.0.1:1", client.Config{PinnedCert: []byte{1}, Identity: make(ed25519.PrivateKey, 10)}); err == nil {
		t.Fatal("malformed identity key accepted")
	}
}

// A node that renewed its certificate with the same key is still the
// pinned node: for a pinned certificate, a key fingerprint and a trust-on-
// first-use file (which then remembers the renewed certificate). A pin of
// the old certificate's own fingerprint does not survive the renewal.
func TestPinSurvivesRenewal(t *testing.T) {
	dir := t.TempDir()
	_, oldCert := clientTestNodeIn(t, dir)
	pin := filepath.Join(t.TempDir(), "node.der")
	if err := os.WriteFile(pin, oldCert, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := transport.LoadServerCert(filepath.Join(dir, "c.der"), filepath.Join(dir, "k.der"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.RenewServerCert(cert, filepath.Join(dir, "c.der"), transport.CertLifetime); err != nil {
		t.Fatal(err)
	}
	addr, newCert := clientTestNodeIn(t, dir)
	if bytes.Equal(newCert, oldCert) {
		t.Fatal("the renewed node serves the old certificate")
	}
	ctx := clientTestCtx(t)
	kfp, err := transport.KeyFingerprint(oldCert)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]client.Config{
		"pinned certificate": {PinnedCert: oldCert},
		"key fingerprint":    {PinnedFingerprint: kfp[:]},
		"trust on first use": {VerifyServer: client.TOFUFile(pin)},
	} {
		c, err := client.Dial(ctx, addr, cfg)
		if err != nil {
			t.Fatalf("%s, after a renewal: %v", name, err)
		}
		c.Close()
	}
	if saved, _ := os.ReadFile(pin); !bytes.Equal(saved, newCert) {
		t.Fatal("the trust-on-first-use file does not hold the renewed certificate")
	}
	fp := sha256.Sum256(oldCert)
	if _, err := client.Dial(ctx, addr, client.Config{PinnedFingerprint: fp[:]}); !errors.Is(err, client.ErrServerCertChanged) {
		t.Fatalf("old certificate fingerprint after a renewal: %v, want ErrServerCertChanged", err)
	}
}
