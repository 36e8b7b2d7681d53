package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

func nodeDaemon(t *testing.T, dir, nodeAddr string, cert []byte) *daemontest.Daemon {
	t.Helper()
	return daemontest.StartDaemon(t, daemontest.DaemonConfig{
		StateDir: filepath.Join(dir, "state"),
		Socket:   filepath.Join(dir, "run", "qpd.sock"),
		NodeAddr: nodeAddr,
		NodeCert: cert,
	})
}

func waitConnState(t *testing.T, stream interface {
	Recv() (*daemonv1.Event, error)
}, want daemonv1.ConnectionState) *daemonv1.Event {
	t.Helper()
	for {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for %v: %v", want, err)
		}
		if c := ev.GetConnection(); c != nil {
			if c.GetState() != want {
				t.Fatalf("connection event %v, want %v", c, want)
			}
			return ev
		}
	}
}

func TestNodeConnectionPingAndLiveEvents(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	nodeDir := t.TempDir()
	node := daemontest.StartNode(t, nodeDir, "127.0.0.1:0")
	d := nodeDaemon(t, dir, node.Addr, nil)
	c := d.Dial(t)
	ctx := ctxT(t)

	// Before registering, ping uses a one-off anonymous connection.
	p, err := c.Ping(ctx, &daemonv1.PingRequest{})
	if err != nil || p.GetRtt().AsDuration() <= 0 || p.GetAddress() != node.Addr {
		t.Fatalf("Ping before register: %v %v", p, err)
	}

	stream, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, &daemonv1.RegisterRequest{}); err != nil {
		t.Fatal(err)
	}
	first := waitConnState(t, stream, daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED)
	if first.GetConnection().GetAddress() != node.Addr {
		t.Errorf("connection event address %q, want %q", first.GetConnection().GetAddress(), node.Addr)
	}

	st, err := c.Status(ctx, &daemonv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(node.CertDER)
	if st.GetNode().GetState() != daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED || st.GetNode().GetPinnedCertSha256() != hex.EncodeToString(sum[:]) {
		t.Errorf("status node: %v (cert sha256 %x)", st.GetNode(), sum)
	}
	if !st.GetKeyPackagesKnown() {
		t.Errorf("key packages: not known while connected (%v)", st)
	}
	// Once connected, qpd tops up its KeyPackages at the node by itself
	// (the status may come before, during or after the upload).
	for st.GetKeyPackagesLeft() == 0 {
		if ctx.Err() != nil {
			t.Fatalf("no KeyPackages at the node after connecting: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
		if st, err = c.Status(ctx, &daemonv1.StatusRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := c.Ping(ctx, &daemonv1.PingRequest{}); err != nil || p.GetRtt().AsDuration() <= 0 {
		t.Fatalf("Ping when connected: %v %v", p, err)
	}

	// The node goes away: the stream reports it, live.
	node.Stop()
	down := waitConnState(t, stream, daemonv1.ConnectionState_CONNECTION_STATE_DISCONNECTED)
	if down.GetSeq() <= first.GetSeq() {
		t.Errorf("event seq went from %d to %d", first.GetSeq(), down.GetSeq())
	}
	_, err = c.Ping(ctx, &daemonv1.PingRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Ping with node down: %v, want Unavailable", err)
	}
	// It comes back on the same address: the daemon reconnects.
	node = daemontest.StartNode(t, nodeDir, node.Addr)
	waitConnState(t, stream, daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED)
}

func TestNodeCertificateChangeRefused(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	node := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	d := nodeDaemon(t, dir, node.Addr, nil)
	c := d.Dial(t)
	ctx := ctxT(t)
	stream, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, &daemonv1.RegisterRequest{}); err != nil {
		t.Fatal(err)
	}
	cursor := waitConnState(t, stream, daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED).GetSeq()
	d.Stop()
	node.Stop()

	// Another node (new certificate) on the same address.
	other := daemontest.StartNode(t, t.TempDir(), node.Addr)
	d = nodeDaemon(t, dir, other.Addr, nil)
	c = d.Dial(t)
	stream, err = c.Subscribe(ctx, &daemonv1.SubscribeRequest{AfterSeq: cursor})
	if err != nil {
		t.Fatal(err)
	}
	// The first daemon may have recorded its own lost connection after
	// the cursor as it stopped; the refusal follows it.
	var msg string
	for range 3 {
		ev := waitConnState(t, stream, daemonv1.ConnectionState_CONNECTION_STATE_DISCONNECTED)
		if msg = ev.GetConnection().GetLastError(); msg != "connection lost" {
			break
		}
	}
	if !strings.Contains(msg, "node certificate changed") || !strings.Contains(msg, "--repin") {
		t.Fatalf("refusal says %q; want the change named and how to re-pin", msg)
	}

	// After forgetting the pin, the new certificate is pinned.
	if had, err := d.Backend.ForgetPin(ctx); err != nil || !had {
		t.Fatalf("ForgetPin: %v %v", had, err)
	}
	waitConnState(t, stream, daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED)
	st, err := c.Status(ctx, &daemonv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(other.CertDER)
	if st.GetNode().GetPinnedCertSha256() != hex.EncodeToString(sum[:]) {
		t.Errorf("pinned %s, want %x", st.GetNode().GetPinnedCertSha256(), sum)
	}
}

func TestNodeGivenCertificateMismatch(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	node := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	wrong := daemontest.StartNode(t, t.TempDir(), "127.0.0.1:0")
	d := nodeDaemon(t, dir, node.Addr, wrong.CertDER)
	c := d.Dial(t)
	ctx := ctxT(t)
	stream, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, &daemonv1.RegisterRequest{}); err != nil {
		t.Fatal(err)
	}
	ev := waitConnState(t, stream, daemonv1.ConnectionState_CONNECTION_STATE_DISCONNECTED)
	if !strings.Contains(ev.GetConnection().GetLastError(), "node certificate changed") {
		t.Fatalf("last error %q", ev.GetConnection().GetLastError())
	}
	time.Sleep(300 * time.Millisecond) // several retries
	st, err := c.Status(ctx, &daemonv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetNode().GetState() == daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED {
		t.Fatal("connected to a node whose certificate is not the given one")
	}
}
