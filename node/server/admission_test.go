package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

func metricsNode(t *testing.T, cfg server.Config) (*testNode, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	m, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	return startTestNode(t, cfg, store.Limits{}), reg
}

func (n *testNode) tryDial(t *testing.T, id *testIdentity) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := client.Config{PinnedCert: n.certDER, Logger: testLogger(t)}
	if id != nil {
		cfg.Identity = id.priv
	}
	c, err := client.Dial(ctx, n.addr, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func waitDone(t *testing.T, c *client.Client, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s is still open", what)
	}
}

// One identity holds at most MaxConnsPerIdentity connections: its newest
// closes its oldest, so it cannot take more than its share, and a daemon
// that reconnects is not locked out by its own stale connections.
func TestConnsPerIdentity(t *testing.T) {
	n, reg := metricsNode(t, server.Config{MaxConnsPerIdentity: 2})
	ctx := testCtx(t)
	a := newTestIdentity(t)
	c1, c2 := n.dial(t, a.priv), n.dial(t, a.priv)
	c3 := n.dial(t, a.priv)
	waitDone(t, c1, "the identity's oldest connection")
	for _, c := range []*client.Client{c2, c3} {
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("newer connection: %v", err)
		}
	}
	if v := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": "connsPerIdentity"}); v != 1 {
		t.Fatalf("connsPerIdentity refusals %v, want 1", v)
	}
}

// Connections without a certificate (which may only ping) have a cap of
// their own per address, and an identity arriving at a full address closes
// the oldest anonymous one rather than being refused.
func TestAnonymousConnsYield(t *testing.T) {
	n, reg := metricsNode(t, server.Config{MaxConnsPerIP: 3, MaxAnonConnsPerIP: 2})
	ctx := testCtx(t)
	anon1, _ := n.tryDial(t, nil)
	anon2, _ := n.tryDial(t, nil)
	if anon1 == nil || anon2 == nil {
		t.Fatal("anonymous connections within the cap refused")
	}
	_, err := n.tryDial(t, nil)
	wantErr(t, "third anonymous connection", err, client.ErrLimit)
	a, b := newTestIdentity(t), newTestIdentity(t)
	n.dial(t, a.priv) // the address is full now
	cb := n.dial(t, b.priv)
	waitDone(t, anon1, "the oldest anonymous connection")
	if _, err := anon2.Ping(ctx); err != nil {
		t.Fatalf("the other anonymous connection: %v", err)
	}
	if _, err := cb.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Only identities left but one: another identity is refused.
	c := newTestIdentity(t)
	n.dial(t, c.priv) // closes anon2
	_, err = n.tryDial(t, func() *testIdentity { d := newTestIdentity(t); return &d }())
	wantErr(t, "identity at an address full of identities", err, client.ErrLimit)
	for kind, want := range map[string]float64{"anonymousConnsPerIP": 1, "anonymousEvicted": 2, "connsPerIP": 1} {
		if v := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": kind}); v != want {
			t.Errorf("%s: %v, want %v", kind, v, want)
		}
	}
}

// MaxConns bounds the connections of every address together.
func TestMaxConns(t *testing.T) {
	n, reg := metricsNode(t, server.Config{MaxConns: 2})
	a, b, c := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	n.dial(t, a.priv)
	n.dial(t, b.priv)
	_, err := n.tryDial(t, &c)
	wantErr(t, "third connection", err, client.ErrLimit)
	if v := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": "conns"}); v != 1 {
		t.Fatalf("conns refusals %v", v)
	}
	if v := metricValue(t, reg, "qpnode_connections", nil); v != 2 {
		t.Fatalf("connections gauge %v, want 2", v)
	}
}

// A connection with no subscription that sends nothing for IdleTimeout is
// closed; one with a subscription stays.
func TestIdleTimeout(t *testing.T) {
	n, reg := metricsNode(t, server.Config{IdleTimeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	idle := n.dial(t, a.priv)
	sub := n.dial(t, b.priv)
	s, err := sub.Subscribe(ctx, b.pub, 0, func(context.Context, []client.Envelope) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel(ctx)
	waitDone(t, idle, "the idle connection")
	if _, err := sub.Ping(ctx); err != nil {
		t.Fatalf("subscribed connection after the idle timeout: %v", err)
	}
	// The client may see its connection end before the node counts why.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": "idle"})
		if v == 1 {
			break
		}
		if v > 1 || time.Now().After(deadline) {
			t.Fatalf("idle refusals %v, want 1", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
