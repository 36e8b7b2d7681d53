package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

func TestMain(m *testing.M) {
	daemontest.HostileListenerMain()
	os.Exit(m.Run())
}

// sharedTmp is a folder like /tmp: anyone may create entries, only their
// owner may remove them.
func sharedTmp(t *testing.T) string {
	t.Helper()
	dir := daemontest.ShortTempDir(t)
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDialRefusesAnotherUsersListener plays another local user who made the
// fallback socket folder first and listens in it: Dial fails with
// ErrForeignDaemon and not one byte reaches the listener.
func TestDialRefusesAnotherUsersListener(t *testing.T) {
	tmp := sharedTmp(t)
	path := filepath.Join(tmp, "quicproquo-0", "qpd.sock")
	h := daemontest.StartHostileListener(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, path)
	if !errors.Is(err, client.ErrForeignDaemon) {
		if c != nil {
			c.Status(ctx, &daemonv1.StatusRequest{})
		}
		t.Fatalf("Dial to another user's listener: %v, want ErrForeignDaemon", err)
	}
	if !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(err.Error(), "nothing was sent") {
		t.Errorf("error does not explain: %v", err)
	}
	if n := h.BytesReceived(t); n != 0 {
		t.Fatalf("the other user's listener received %d bytes", n)
	}
}

// TestClientRefusesListenerSwappedInLater: a client connected to the real
// daemon, which then goes away, and the socket path then leads to another
// user's listener: the client's next call fails and sends nothing there.
func TestClientRefusesListenerSwappedInLater(t *testing.T) {
	tmp := sharedTmp(t)
	hostilePath := filepath.Join(tmp, "evil", "qpd.sock")
	h := daemontest.StartHostileListener(t, hostilePath)

	dir := daemontest.ShortTempDir(t)
	d := daemontest.StartDaemon(t, daemontest.DaemonConfig{StateDir: filepath.Join(dir, "state"), Socket: filepath.Join(dir, "run", "qpd.sock")})
	link := filepath.Join(dir, "qpd.sock")
	if err := os.Symlink(d.Socket, link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx, &daemonv1.StatusRequest{}); err != nil {
		t.Fatalf("Status from the real daemon: %v", err)
	}
	d.Stop()
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostilePath, link); err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctx, &daemonv1.SendRequest{Group: "team", Text: "my bank PIN is 4321"})
	if err == nil || !strings.Contains(err.Error(), client.ErrForeignDaemon.Error()) {
		t.Fatalf("Send after the swap: %v, want a refusal naming the other user", err)
	}
	if n := h.BytesReceived(t); n != 0 {
		t.Fatalf("the other user's listener received %d bytes", n)
	}
}

func TestDialNotRunning(t *testing.T) {
	_, err := client.Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, client.ErrDaemonNotRunning) {
		t.Fatalf("Dial with no daemon: %v", err)
	}
}
