package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

func forkEvents(t *testing.T, b *Backend) []Event {
	t.Helper()
	evs, err := b.EventsAfter(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for _, e := range evs {
		if e.Kind == store.EventFork {
			out = append(out, e)
		}
	}
	return out
}

// A member whose message carries another epoch authenticator than the
// receiver's raises one fork event naming it; matching ones raise none.
func TestForkDetectedByEpochAuthenticator(t *testing.T) {
	r := receiveSetup(t)
	peer := []byte(r.peerKey.Public().(ed25519.PublicKey))
	good, err := r.peer.Protect(appendAppContentAuth(time.Now(), "same state", r.peer.EpochAuthenticator()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := r.apply(2, good, nil); err != nil || !applied {
		t.Fatalf("good message: %v %v", applied, err)
	}
	if evs := forkEvents(t, r.b); len(evs) != 0 {
		t.Fatalf("fork events for a matching authenticator: %+v", evs)
	}
	other := bytes.Repeat([]byte{0x42}, 32)
	for i := range 2 {
		bad, err := r.peer.Protect(appendAppContentAuth(time.Now(), "other state", other), nil)
		if err != nil {
			t.Fatal(err)
		}
		if applied, err := r.apply(uint64(3+i), bad, nil); err != nil || !applied {
			t.Fatalf("message with another authenticator: %v %v", applied, err)
		}
	}
	evs := forkEvents(t, r.b)
	if len(evs) != 1 || !bytes.Equal(evs[0].GroupID, r.group) || !bytes.Equal(evs[0].Member, peer) {
		t.Fatalf("fork events %+v, want one naming the peer", evs)
	}
}

// Members of one group send their authenticator and agree: no fork event
// in an honest conversation.
func TestNoForkInHonestGroup(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "honest", alice, bob)
	for _, u := range []*groupsUser{alice, bob} {
		if _, err := u.b.Send(ctx, gid, "hi", nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "both read both", func() bool {
		return len(groupsTexts(t, alice, gid)) == 2 && len(groupsTexts(t, bob, gid)) == 2
	})
	for _, u := range []*groupsUser{alice, bob} {
		if evs := forkEvents(t, u.b); len(evs) != 0 {
			t.Fatalf("fork events in an honest group: %+v", evs)
		}
	}
}
