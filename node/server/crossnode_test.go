package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/internal/s3test"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/postgres"
)

// The package's tests run through pgtest.Run, which stops the PostgreSQL
// cluster of the cross-node tests (if one started) afterwards; then the
// S3 server of the blob tests (if one started) stops.
func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	s3test.Stop()
	os.Exit(code)
}

// startPostgresNode starts a node on loopback whose store is the
// PostgreSQL database conn, as one of several stateless nodes sharing it
// would be. It stops at cleanup.
func startPostgresNode(t *testing.T, conn string) *testNode {
	t.Helper()
	st, err := postgres.Open(context.Background(), conn, store.Limits{}, testLogger(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return serveNode(t, server.Config{Store: st}, st.Close)
}

// pushed collects what a subscription delivers.
type pushed struct {
	mu   sync.Mutex
	envs []client.Envelope
	more chan struct{}
}

func subscribe(t *testing.T, c *client.Client, id testIdentity) *pushed {
	t.Helper()
	p := &pushed{more: make(chan struct{}, 1)}
	sub, err := c.Subscribe(testCtx(t), id.pub, 0, func(ctx context.Context, batch []client.Envelope) error {
		p.mu.Lock()
		p.envs = append(p.envs, batch...)
		p.mu.Unlock()
		select {
		case p.more <- struct{}{}:
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sub.Cancel(ctx)
	})
	return p
}

// wait waits up to within for the subscription to have delivered n
// messages and returns them.
func (p *pushed) wait(t *testing.T, n int, within time.Duration) []client.Envelope {
	t.Helper()
	deadline := time.After(within)
	for {
		p.mu.Lock()
		got := append([]client.Envelope(nil), p.envs...)
		p.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-p.more:
		case <-deadline:
			t.Fatalf("after %v the subscription has %d messages, want %d", within, len(got), n)
		}
	}
}

// A client subscribed on node B gets, within seconds, what is enqueued
// through node A: both nodes share one PostgreSQL database, and B learns
// of A's writes through the store's notifications.
func TestCrossNodePushEnqueue(t *testing.T) {
	conn := pgtest.NewDatabase(t)
	a, b := startPostgresNode(t, conn), startPostgresNode(t, conn)
	alice, bob := newTestIdentity(t), newTestIdentity(t)
	ca, cb := a.dial(t, alice.priv), b.dial(t, bob.priv)
	ctx := testCtx(t)

	sub := subscribe(t, cb, bob)
	if _, _, err := ca.Enqueue(ctx, bob.pub, []byte("first, through A"), []byte("m1")); err != nil {
		t.Fatalf("enqueue through A: %v", err)
	}
	got := sub.wait(t, 1, 5*time.Second)
	// By now B's subscription is idle, waiting for a wake-up: only a
	// notification from A's write can bring the next message.
	time.Sleep(200 * time.Millisecond)
	if _, _, err := ca.Enqueue(ctx, bob.pub, []byte("second, through A"), []byte("m2")); err != nil {
		t.Fatalf("enqueue through A: %v", err)
	}
	got = sub.wait(t, 2, 5*time.Second)
	for i, want := range []string{"first, through A", "second, through A"} {
		if got[i].Seq != uint64(i+1) || string(got[i].Payload) != want || !bytes.Equal(got[i].Sender, alice.pub) {
			t.Fatalf("push %d on B = {Seq:%d Payload:%q Sender:%x}, want {Seq:%d Payload:%q Sender:%x}",
				i, got[i].Seq, got[i].Payload, got[i].Sender, i+1, want, alice.pub)
		}
	}
	// The nodes share the queue: B acknowledges, A sees it gone.
	if n, err := cb.Ack(ctx, bob.pub, 2); err != nil || n != 2 {
		t.Fatalf("ack through B = %d, %v", n, err)
	}
	cbA := a.dial(t, bob.priv)
	if msgs, err := cbA.Receive(ctx, bob.pub, 0, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("receive through A after the ack through B = %v, %v; want none", msgs, err)
	}
}

// crossAppMessage builds an MLSMessage carrying a PrivateMessage with
// application content (RFC 9420 §6): only its header is meaningful to the
// node.
func crossAppMessage(groupID []byte, epoch uint64, tag string) []byte {
	b := []byte{0, 1, 0, 2} // mls10, mls_private_message
	b = tlsOpaque(b, groupID)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, 1)      // content type: application
	b = tlsOpaque(b, nil) // authenticated_data
	return append(b, tag...)
}

// A group message fanned out through node A reaches a member subscribed
// on node B.
func TestCrossNodePushFanOut(t *testing.T) {
	conn := pgtest.NewDatabase(t)
	a, b := startPostgresNode(t, conn), startPostgresNode(t, conn)
	ma, mb, mc := grouptest.NewMember(t), grouptest.NewMember(t), grouptest.NewMember(t)
	ma.Conn, mb.Conn, mc.Conn = a.dial(t, ma.Priv), b.dial(t, mb.Priv), b.dial(t, mc.Priv)
	g := grouptest.Form(t, ma, mb, mc)
	alice, bob, carol := testIdentity{ma.Pub, ma.Priv}, testIdentity{mb.Pub, mb.Priv}, testIdentity{mc.Pub, mc.Priv}
	ca, cb, cc := ma.Conn, mb.Conn, mc.Conn
	ctx := testCtx(t)

	subB, subC := subscribe(t, cb, bob), subscribe(t, cc, carol)
	time.Sleep(200 * time.Millisecond) // both subscriptions idle, waiting for a wake-up
	msg := crossAppMessage(g, 1, "hello group")
	seq, dup, err := ca.FanOut(ctx, []byte("f1"), msg)
	if err != nil || seq != 2 || dup {
		t.Fatalf("fan out through A = (%d, %v, %v), want (2, false, nil)", seq, dup, err)
	}
	for name, sub := range map[string]*pushed{"bob": subB, "carol": subC} {
		got := sub.wait(t, 1, 5*time.Second)
		if len(got) != 1 || !bytes.Equal(got[0].Payload, msg) || !bytes.Equal(got[0].Sender, alice.pub) {
			t.Fatalf("%s's pushes on B = %+v, want the fanned-out message from alice", name, got)
		}
	}
	// Alice's retry through B is a duplicate of what she sent through A.
	caB := b.dial(t, alice.priv)
	seq, dup, err = caB.FanOut(ctx, []byte("f1"), msg)
	if err != nil || seq != 2 || !dup {
		t.Fatalf("retry through B = (%d, %v, %v), want (2, true, nil)", seq, dup, err)
	}
}
