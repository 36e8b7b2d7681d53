package backend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
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
// its start. Bob gets what Alice sends after the restore, once, and his
// history holds every message once.
func TestNodeRestoredFromABackup(t *testing.T) {
	dir, backup := t.TempDir(), t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	addr := node.Addr
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "restore", alice, bob)
	ctx := context.Background()
	var want []string
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			text := fmt.Sprintf("m%d", i)
			want = append(want, text)
			if _, err := alice.b.Send(ctx, gid, text, nil); err != nil {
				t.Fatal(err)
			}
		}
		groupsWait(t, fmt.Sprintf("bob has %d messages", to), func() bool { return len(groupsTexts(t, bob, gid)) >= to })
	}
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
}
