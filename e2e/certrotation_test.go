package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
)

// Certificate rotation: daemons that pinned the node's certificate on
// first use keep working after the node restarts with a renewed one. The
// node's certificate is replaced (same key) by one that ends tomorrow, so
// the restarted node renews it itself at start, as it does when a
// certificate nears its end; the daemons pin the key and reconnect.
func TestCertRotationKeepsDaemons(t *testing.T) {
	n, alice, bob, group := twoPeople(t, nil)
	alice.must(t, "send", "--group-id", group, "--msg", "before the rotation")
	checkMessage(t, bob.recvUntil(t, group, 1)[0], group, alice.id, "before the rotation")

	certPath, keyPath := filepath.Join(n.dir, "data", "server-cert.der"), filepath.Join(n.dir, "data", "server-key.der")
	n.p.stop(syscall.SIGTERM)
	old, err := transport.LoadServerCert(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if life := old.Leaf.NotAfter.Sub(old.Leaf.NotBefore); life > 366*24*time.Hour {
		t.Fatalf("node certificate valid for %v, want a year", life)
	}
	if _, err := transport.RenewServerCert(old, certPath, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemons see the node down", func() bool {
		return alice.status(t).Node.State != "connected" && bob.status(t).Node.State != "connected"
	})

	startNode(t, n.dir, n.addr)
	renewed, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := transport.LoadServerCert(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(renewed, old.Certificate[0]) || transport.RenewalDue(cert, time.Now()) || !transport.SameKey(renewed, old.Certificate[0]) {
		t.Fatalf("the node did not renew its certificate with its key at start (valid until %v)", cert.Leaf.NotAfter)
	}
	waitFor(t, "daemons reconnected to the renewed node", func() bool {
		return alice.status(t).Node.State == "connected" && bob.status(t).Node.State == "connected"
	})
	alice.must(t, "send", "--group-id", group, "--msg", "after the rotation")
	checkMessage(t, bob.recvUntil(t, group, 1)[0], group, alice.id, "after the rotation")
	bob.must(t, "send", "--group-id", group, "--msg", "still here")
	checkMessage(t, alice.recvUntil(t, group, 1)[0], group, bob.id, "still here")
}
