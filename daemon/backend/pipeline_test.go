package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// pipelineHandler records each envelope as a message of one group. It
// rejects the payload "bad" (after writing, to show the rollback), fails
// the payload "flaky" once, as a transient error, and panics on "panic".
type pipelineHandler struct {
	group  []byte
	flaked atomic.Bool
	calls  atomic.Int64
}

func (h *pipelineHandler) HandleEnvelope(ctx context.Context, tx *store.Tx, env nodeclient.Envelope) error {
	h.calls.Add(1)
	m, err := tx.AppendMessage(store.Message{GroupID: h.group, MessageID: fmt.Appendf(nil, "env-%d", env.Seq), Sender: env.Sender, Text: string(env.Payload), SentAt: env.EnqueuedAt})
	if err != nil {
		return err
	}
	switch string(env.Payload) {
	case "bad":
		return fmt.Errorf("%w: test payload", ErrRejectEnvelope)
	case "flaky":
		if !h.flaked.Swap(true) {
			return errors.New("transient test failure")
		}
	case "panic":
		var none []byte
		_ = none[len(env.Payload)] // index out of range, as a decoder bug would
	}
	_, err = tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: h.group, MessageSeq: m.Seq})
	return err
}

type pipelineRig struct {
	node  *testnode.Node
	dir   string
	b     *Backend
	st    *store.Store
	stop  func()
	id    ed25519.PrivateKey
	group []byte
}

// pipelineStart runs a registered Backend on the store in dir against node.
func pipelineStart(t *testing.T, node *testnode.Node, dir string, h EnvelopeHandler) *pipelineRig {
	t.Helper()
	st, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Store: st, Logger: testnode.Logger(), NodeAddr: node.Addr, NodeCert: node.CertDER, Envelopes: h,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	r := &pipelineRig{node: node, dir: dir, b: b, st: st}
	stopped := false
	r.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			st.Close()
		}
	}
	t.Cleanup(r.stop)
	id, err := b.identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.id = id.PrivateKey
	// Connected means registered at the node: peers can reach it.
	pipelineWait(t, "connected", func() bool { return b.Connection().State == StateConnected })
	return r
}

func pipelinePeer(t *testing.T, node *testnode.Node, id ed25519.PrivateKey) *nodeclient.Client {
	t.Helper()
	if id == nil {
		_, id, _ = ed25519.GenerateKey(rand.Reader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nodeclient.Dial(ctx, node.Addr, nodeclient.Config{Identity: id, PinnedCert: node.CertDER})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The node takes messages only from registered identities.
	if err := c.Register(ctx, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

func pipelineWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pipelineTexts(t *testing.T, b *Backend) []string {
	t.Helper()
	p, err := b.Messages(context.Background(), MessagesQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range p.Messages {
		out = append(out, m.Text)
	}
	return out
}

func TestReceiveAppliesOnceAndAcks(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	dir := t.TempDir()
	gid := bytes.Repeat([]byte{9}, store.GroupIDSize)
	h := &pipelineHandler{group: gid}
	r := pipelineStart(t, node, dir, h)
	if err := r.b.update(context.Background(), func(tx *store.Tx) error {
		return tx.PutGroup(store.Group{ID: gid, Name: "inbox", State: []byte("s")})
	}); err != nil {
		t.Fatal(err)
	}
	me := r.id.Public().(ed25519.PublicKey)
	// Connected means registered: the node delivers only to registered identities.
	pipelineWait(t, "connection", func() bool { return r.b.Connection().State == StateConnected })
	peer := pipelinePeer(t, node, nil)
	ctx := context.Background()
	for _, p := range []string{"one", "bad", "flaky", "two"} {
		if _, _, err := peer.Enqueue(ctx, me, []byte(p), []byte("id-"+p)); err != nil {
			t.Fatalf("enqueue %s: %v", p, err)
		}
	}
	pipelineWait(t, "three messages applied", func() bool { return len(pipelineTexts(t, r.b)) == 3 })
	if got := pipelineTexts(t, r.b); fmt.Sprint(got) != "[one flaky two]" {
		t.Fatalf("applied %q, want [one flaky two] (bad rejected, flaky retried)", got)
	}
	var cursor uint64
	r.st.View(ctx, func(tx *store.Tx) (err error) { cursor, err = tx.NodeCursor(); return })
	if cursor != 4 {
		t.Errorf("node cursor = %d, want 4", cursor)
	}
	// Everything applied is acknowledged: the queue at the node empties.
	self := pipelinePeer(t, node, r.id)
	pipelineWait(t, "the node queue to be acked", func() bool {
		envs, err := self.Receive(ctx, me, 0, 100)
		return err == nil && len(envs) == 0
	})

	// After a restart nothing is applied twice, and new messages still come.
	r.stop()
	calls := h.calls.Load()
	r = pipelineStart(t, node, dir, h)
	if _, _, err := peer.Enqueue(ctx, me, []byte("three"), []byte("id-three")); err != nil {
		t.Fatal(err)
	}
	pipelineWait(t, "the message after restart", func() bool { return len(pipelineTexts(t, r.b)) == 4 })
	if got := pipelineTexts(t, r.b); fmt.Sprint(got) != "[one flaky two three]" {
		t.Fatalf("after restart %q", got)
	}
	if n := h.calls.Load() - calls; n != 1 {
		t.Errorf("handler called %d times after restart, want 1", n)
	}
}

// A handler that panics on an envelope (a bug some crafted input reaches)
// does not end the daemon: the envelope is rejected, its writes rolled back,
// and the queue goes on.
func TestReceiveSurvivesHandlerPanic(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	gid := bytes.Repeat([]byte{7}, store.GroupIDSize)
	h := &pipelineHandler{group: gid}
	r := pipelineStart(t, node, t.TempDir(), h)
	ctx := context.Background()
	if err := r.b.update(ctx, func(tx *store.Tx) error {
		return tx.PutGroup(store.Group{ID: gid, Name: "inbox", State: []byte("s")})
	}); err != nil {
		t.Fatal(err)
	}
	me := r.id.Public().(ed25519.PublicKey)
	// Connected means registered: the node delivers only to registered identities.
	pipelineWait(t, "connection", func() bool { return r.b.Connection().State == StateConnected })
	peer := pipelinePeer(t, node, nil)
	for _, p := range []string{"one", "panic", "two"} {
		if _, _, err := peer.Enqueue(ctx, me, []byte(p), []byte("id-"+p)); err != nil {
			t.Fatalf("enqueue %s: %v", p, err)
		}
	}
	pipelineWait(t, "two messages applied", func() bool { return len(pipelineTexts(t, r.b)) == 2 })
	if got := pipelineTexts(t, r.b); fmt.Sprint(got) != "[one two]" {
		t.Fatalf("applied %q, want [one two]", got)
	}
	var cursor uint64
	r.st.View(ctx, func(tx *store.Tx) (err error) { cursor, err = tx.NodeCursor(); return })
	if cursor != 3 {
		t.Errorf("node cursor = %d, want 3", cursor)
	}
	evs, err := r.b.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	rejected := 0
	for _, e := range evs {
		if e.Kind == store.EventRejected {
			rejected++
			if e.MessageSeq != 2 || !strings.Contains(e.Detail, "panic") {
				t.Errorf("rejected event %+v, want node seq 2 and a reason naming the panic", e)
			}
		}
	}
	if rejected != 1 {
		t.Fatalf("%d rejected events, want 1", rejected)
	}
}

func TestOutboxDeliversAndWaitsWhileOffline(t *testing.T) {
	nodeDir := t.TempDir()
	node := testnode.StartNode(t, nodeDir, "127.0.0.1:0")
	r := pipelineStart(t, node, t.TempDir(), nil)
	_, peerID, _ := ed25519.GenerateKey(rand.Reader)
	peerPub := peerID.Public().(ed25519.PublicKey)
	pipelinePeer(t, node, peerID).Close() // the node delivers only to registered identities
	ctx := context.Background()

	add := func(payload string) int64 {
		var it store.OutboxItem
		err := r.b.update(ctx, func(tx *store.Tx) (err error) {
			it, err = tx.AddOutbox(store.OutboxItem{Kind: store.OutboxApplication, Payload: []byte(payload), Recipients: [][]byte{peerPub}, ClientMsgID: []byte("c-" + payload)})
			return
		})
		if err != nil {
			t.Fatal(err)
		}
		return it.ID
	}
	state := func(id int64) store.OutboxState {
		var it store.OutboxItem
		if err := r.st.View(ctx, func(tx *store.Tx) (err error) { it, err = tx.Outbox(id); return }); err != nil {
			t.Fatal(err)
		}
		return it.State
	}
	pipelineWait(t, "connection", func() bool { return r.b.Connection().State == StateConnected })
	first := add("hello")
	pipelineWait(t, "first item sent", func() bool { return state(first) == store.OutboxSent })

	node.Stop()
	pipelineWait(t, "disconnect", func() bool { return r.b.Connection().State != StateConnected })
	second := add("while offline")
	time.Sleep(300 * time.Millisecond)
	if s := state(second); s != store.OutboxPending {
		t.Fatalf("offline item is %s, want pending", s)
	}
	node = testnode.StartNode(t, nodeDir, node.Addr)
	pipelineWait(t, "offline item sent after reconnect", func() bool { return state(second) == store.OutboxSent })

	peer := pipelinePeer(t, node, peerID)
	envs, err := peer.Receive(ctx, peerPub, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 || string(envs[0].Payload) != "hello" || string(envs[1].Payload) != "while offline" ||
		!bytes.Equal(envs[1].ClientMsgID, []byte("c-while offline")) || !bytes.Equal(envs[0].Sender, r.id.Public().(ed25519.PublicKey)) {
		t.Fatalf("peer received %+v", envs)
	}
}
