package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// A pushed batch is applied in one transaction, each envelope in its own
// savepoint: the rejected ones are rolled back alone and logged, the good
// ones around them are kept, and the cursor ends past the whole batch.
func TestReceiveBatchRejectsAlone(t *testing.T) {
	r := receiveSetup(t)
	ctx := context.Background()
	if _, err := r.b.Join(ctx, 0); err != nil {
		t.Fatal(err)
	}
	good1, err := r.peer.Protect(appendAppContent(time.Now(), "one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	badContent, err := r.peer.Protect([]byte("not our format"), nil)
	if err != nil {
		t.Fatal(err)
	}
	good2, err := r.peer.Protect(appendAppContent(time.Now(), "two"), nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := r.peerKey.Public().(ed25519.PublicKey)
	var batch []nodeclient.Envelope
	for i, p := range [][]byte{[]byte("garbage"), good1, badContent, good2, good1} {
		batch = append(batch, nodeclient.Envelope{Seq: uint64(2 + i), Sender: peer, Payload: p, EnqueuedAt: time.Now(), Sequenced: true})
	}
	applied, cursor, err := r.b.applyEnvelopes(ctx, batch)
	if err != nil || applied != 2 || cursor != 6 {
		t.Fatalf("applyEnvelopes = %d applied, cursor %d, %v; want 2, 6, nil", applied, cursor, err)
	}
	p, err := r.b.Messages(ctx, MessagesQuery{Group: FormatKey(r.group)})
	if err != nil || len(p.Messages) != 2 || p.Messages[0].Text != "one" || p.Messages[1].Text != "two" {
		t.Fatalf("history: %+v %v", p.Messages, err)
	}
	if rejected := countEvents(t, r.b, store.EventRejected); rejected != 3 {
		t.Errorf("%d rejected events, want 3 (garbage, bad content, replay)", rejected)
	}
	// Delivered again (after a reconnect): nothing changes.
	if applied, cursor, err := r.b.applyEnvelopes(ctx, batch); err != nil || applied != 0 || cursor != 6 {
		t.Fatalf("again: %d applied, cursor %d, %v", applied, cursor, err)
	}
}

// countEvents counts b's events of kind.
func countEvents(t *testing.T, b *Backend, kind store.EventKind) int {
	t.Helper()
	evs, err := b.EventsAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// A lone envelope is applied without a savepoint: rejected, none of its
// writes stay and the cursor moves past it; failed for now, nothing of it
// stays and the cursor stays before it, so that it comes again.
func TestReceiveLoneEnvelopeLeavesNothingBehind(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	gid := bytes.Repeat([]byte{5}, store.GroupIDSize)
	r := pipelineStart(t, node, t.TempDir(), &pipelineHandler{group: gid})
	ctx := context.Background()
	if err := r.b.update(ctx, func(tx *store.Tx) error {
		return tx.PutGroup(store.Group{ID: gid, Name: "inbox", State: []byte("s")})
	}); err != nil {
		t.Fatal(err)
	}
	peer := bytes.Repeat([]byte{8}, ed25519.PublicKeySize)
	lone := func(seq uint64, payload string) (int, uint64, error) {
		return r.b.applyEnvelopes(ctx, []nodeclient.Envelope{{Seq: seq, Sender: peer, Payload: []byte(payload), EnqueuedAt: time.Now()}})
	}
	cursorIs := func(want uint64) {
		t.Helper()
		var cur uint64
		if err := r.st.View(ctx, func(tx *store.Tx) (err error) { cur, err = tx.NodeCursor(); return }); err != nil || cur != want {
			t.Fatalf("node cursor = %d, %v; want %d", cur, err, want)
		}
	}
	if applied, cursor, err := lone(1, "bad"); err != nil || applied != 0 || cursor != 1 {
		t.Fatalf("rejected lone envelope: %d applied, cursor %d, %v; want 0, 1, nil", applied, cursor, err)
	}
	cursorIs(1)
	if got := pipelineTexts(t, r.b); len(got) != 0 {
		t.Fatalf("the rejected envelope left %q", got)
	}
	if n := countEvents(t, r.b, store.EventRejected); n != 1 {
		t.Fatalf("%d rejected events, want 1", n)
	}
	if _, _, err := lone(2, "flaky"); err == nil {
		t.Fatal("a failing lone envelope reported no error")
	}
	cursorIs(1)
	if got := pipelineTexts(t, r.b); len(got) != 0 {
		t.Fatalf("the failed envelope left %q", got)
	}
	if applied, cursor, err := lone(2, "flaky"); err != nil || applied != 1 || cursor != 2 {
		t.Fatalf("lone envelope again: %d applied, cursor %d, %v; want 1, 2, nil", applied, cursor, err)
	}
	if got := pipelineTexts(t, r.b); fmt.Sprint(got) != "[flaky]" {
		t.Fatalf("applied %q, want [flaky]", got)
	}
}
