package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// copyNodeDB copies the node database files of dir (stopped) to into.
func copyNodeDB(t *testing.T, dir, into string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(filepath.Join(dir, "node.db"+suffix))
		if os.IsNotExist(err) {
			os.Remove(filepath.Join(into, "node.db"+suffix))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(into, "node.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A node whose database is restored from a backup numbers its queues on
// from the backup: below what the daemons read since. A daemon that
// subscribed from its cursor would never be pushed the messages numbered
// below it, and its acks would delete them unread. The node refuses the
// cursor as ahead of the queue; the daemon reads the queue again from
// its start. Bob gets what Alice sends after the restore, once, his
// history holds every message once, and what comes again from before the
// restore is not shown to him as rejected.
func TestNodeRestoredFromABackup(t *testing.T) {
	dir, backup := t.TempDir(), t.TempDir()
	// The first run keeps what is acknowledged, so that the backup holds
	// messages Bob had read: after the restore they come to him again.
	node := testnode.StartNodeWrapped(t, dir, "127.0.0.1:0", func(st nodestore.Store) nodestore.Store { return keepAcked{st} })
	addr := node.Addr
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "restore", alice, bob)
	ctx := context.Background()
	var want []string
	send := func(from, to int) { want = sendAndWait(t, alice, bob, gid, from, to, want) }
	send(0, 2)
	node.Stop()
	copyNodeDB(t, dir, backup)
	node = testnode.StartNode(t, dir, addr)
	send(2, 6)
	var before uint64
	if err := bob.b.view(ctx, func(tx *store.Tx) (err error) { before, err = tx.NodeCursor(); return }); err != nil {
		t.Fatal(err)
	}
	node.Stop()
	copyNodeDB(t, backup, dir)
	testnode.StartNode(t, dir, addr)
	send(6, 9)
	if got := groupsTexts(t, bob, gid); !slices.Equal(got, want) {
		t.Fatalf("bob reads %q, want %q", got, want)
	}
	var after uint64
	if err := bob.b.view(ctx, func(tx *store.Tx) (err error) { after, err = tx.NodeCursor(); return }); err != nil {
		t.Fatal(err)
	}
	t.Logf("bob's cursor %d before the restore, %d after", before, after)
	// What the restored queue held from before came again: no rejection
	// for the user to see.
	if n := rejectedFrom(t, bob, alice.id); n != 0 {
		t.Fatalf("bob has %d rejected events of Alice's after the restore, want none", n)
	}
}

// sendAndWait has alice send m<from> … m<to-1> to gid, waits until bob
// holds to messages, and returns want with the texts sent appended.
func sendAndWait(t *testing.T, alice, bob *groupsUser, gid string, from, to int, want []string) []string {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		text := fmt.Sprintf("m%d", i)
		want = append(want, text)
		if _, err := alice.b.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, fmt.Sprintf("bob has %d messages", to), func() bool { return len(groupsTexts(t, bob, gid)) >= to })
	return want
}

// keepAcked is a store whose acks delete nothing.
type keepAcked struct{ nodestore.Store }

func (keepAcked) Ack(context.Context, []byte, uint64) (int, error) { return 0, nil }

// lyingLastSeq says once that the target's queue is empty, as a hostile
// node might, to make a daemon read its queue again.
type lyingLastSeq struct {
	nodestore.Store
	target atomic.Pointer[[]byte]
	lied   atomic.Bool
}

func (s *lyingLastSeq) LastSeq(ctx context.Context, recipient []byte) (uint64, error) {
	if t := s.target.Load(); t != nil && bytes.Equal(recipient, *t) && s.lied.CompareAndSwap(false, true) {
		return 0, nil
	}
	return s.Store.LastSeq(ctx, recipient)
}

// A node that claims a daemon's cursor is ahead of its queue when it is
// not gets the queue read again from its start, and no more: what it
// delivers again is applied once, nothing is lost, and nothing shows as
// rejected.
func TestNodeClaimingTheQueueBehind(t *testing.T) {
	ls := &lyingLastSeq{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		ls.Store = keepAcked{st} // everything Bob read is still queued
		return ls
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "lie", alice, bob)
	var want []string
	send := func(from, to int) { want = sendAndWait(t, alice, bob, gid, from, to, want) }
	send(0, 3)
	// Bob's next subscription meets the lie: the node is restarted (same
	// state), and he reconnects.
	target := []byte(bob.id)
	ls.target.Store(&target)
	node.Stop()
	testnode.StartNodeWrapped(t, node.Dir, node.Addr, func(st nodestore.Store) nodestore.Store {
		ls.Store = keepAcked{st}
		return ls
	})
	groupsWait(t, "the node told its lie", ls.lied.Load)
	send(3, 5)
	if got := groupsTexts(t, bob, gid); !slices.Equal(got, want) {
		t.Fatalf("bob reads %q, want %q", got, want)
	}
	if n := rejectedFrom(t, bob, alice.id); n != 0 {
		t.Fatalf("bob has %d rejected events of Alice's, want none", n)
	}
}
