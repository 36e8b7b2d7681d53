package backend

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// alwaysBehind says, once armed, that the target's queue never handed out a
// number: every cursor and ack of the target's is refused as ahead, so the
// daemon reads the queue again and closes the connection at each ack.
type alwaysBehind struct {
	nodestore.Store
	target atomic.Pointer[[]byte]
	asked  atomic.Int64
}

func (s *alwaysBehind) LastSeq(ctx context.Context, recipient []byte) (uint64, error) {
	if t := s.target.Load(); t != nil && bytes.Equal(recipient, *t) {
		s.asked.Add(1)
		return 0, nil
	}
	return s.Store.LastSeq(ctx, recipient)
}

// A node that makes every connection end soon after it is made (here by
// refusing each ack as ahead, so that the daemon closes it) is redialed no
// faster than the backoff: the daemon neither spins on handshakes and
// re-reads of its queue nor fills its event log with connection events.
func TestNodeDroppingEveryConnection(t *testing.T) {
	ab := &alwaysBehind{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		ab.Store = st
		return ab
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "drop", alice, bob)
	want := sendAndWait(t, alice, bob, gid, 0, 2, nil)
	target := []byte(bob.id)
	ab.target.Store(&target)
	want = sendAndWait(t, alice, bob, gid, 2, 3, want)
	groupsWait(t, "the node refused an ack", func() bool { return ab.asked.Load() > 0 })

	// Bob's backoff runs from 20 ms to 200 ms (the tests' Config): over
	// two seconds that allows about a dozen connections.
	before := connectedEvents(t, bob)
	time.Sleep(2 * time.Second)
	made := connectedEvents(t, bob) - before
	t.Logf("%d connections in 2 s, LastSeq asked %d times", made, ab.asked.Load())
	if made > 16 {
		t.Fatalf("bob connected %d times in 2 s to a node that drops every connection: no backoff", made)
	}
	if made == 0 {
		t.Fatal("bob stopped connecting")
	}
	if got := groupsTexts(t, bob, gid); len(got) != len(want) {
		t.Fatalf("bob reads %q, want %q", got, want)
	}
}

// connectedEvents counts the connection events of u that say connected.
func connectedEvents(t *testing.T, u *groupsUser) int {
	t.Helper()
	evs, err := u.b.EventsAfter(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == store.EventConnection && e.State == StateConnected.String() {
			n++
		}
	}
	return n
}
