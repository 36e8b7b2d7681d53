package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// A node killed and started again on its address resets the connections
// of its previous run (a QUIC stateless reset made with a key derived
// from its TLS key), so a daemon redials within a keep-alive period or
// at its next call, not after the 15-second idle timeout.
func TestDaemonRedialsAKilledNodeAtOnce(t *testing.T) {
	n := startNode(t, tempDir(t), "127.0.0.1:0")
	alice := newUser(t, tempDir(t), "alice", n.addr)
	alice.register(t)
	ac := dialDaemon(t, alice)
	ctx := context.Background()
	st, err := ac.Status(ctx, &daemonv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first := st.Node.Since.AsTime()
	n.p.stop(syscall.SIGKILL)
	n = startNode(t, n.dir, n.addr)
	restarted := time.Now()
	waitFor(t, "alice connected to the restarted node", func() bool {
		st, err := ac.Status(ctx, &daemonv1.StatusRequest{})
		return err == nil && st.Node.State == daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED && st.Node.Since.AsTime().After(first)
	})
	// Keep-alives go every 5 s; without the reset the old connection
	// would end only at the idle timeout, 15 s after the kill.
	if took := time.Since(restarted); took > 10*time.Second {
		t.Fatalf("alice redialled %v after the node restarted, want within a keep-alive period", took)
	}
}
