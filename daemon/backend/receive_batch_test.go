package backend

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
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
	evs, err := r.b.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	rejected := 0
	for _, e := range evs {
		if e.Kind == store.EventRejected {
			rejected++
		}
	}
	if rejected != 3 {
		t.Errorf("%d rejected events, want 3 (garbage, bad content, replay)", rejected)
	}
	// Delivered again (after a reconnect): nothing changes.
	if applied, cursor, err := r.b.applyEnvelopes(ctx, batch); err != nil || applied != 0 || cursor != 6 {
		t.Fatalf("again: %d applied, cursor %d, %v", applied, cursor, err)
	}
}
