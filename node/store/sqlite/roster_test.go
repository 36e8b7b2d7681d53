package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// A group from before the node kept public views has no view: it takes no
// commits or messages, and nobody can claim its id again.
func TestGroupWithoutViewAfterUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	ctx := context.Background()
	g := storetest.GroupID("old group")
	alice, bob := storetest.Key("alice"), storetest.Key("bob")
	old, err := openDB(path, false, DefaultWriterCacheMiB)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA journal_mode=WAL", migrations[0], migrations[1], migrations[2], migrations[3], "PRAGMA user_version = 4"} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO groups (group_id, epoch, last_seq, created_at, roster_known) VALUES (?, 5, 9, 1, 1)`, g); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO group_members (group_id, identity) VALUES (?, ?)`, g, alice); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTestStore(t, path, storetest.Limits())
	if _, err := s.GroupState(ctx, g, alice); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("GroupState of a group without a view: %v, want ErrNotMember", err)
	}
	if _, err := s.FanOut(ctx, g, alice, nil, []byte("m"), nil); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("FanOut to a group without a view: %v, want ErrNotMember", err)
	}
	check := func(store.GroupView) (store.CommitVerdict, error) {
		return store.CommitVerdict{View: []byte("v"), Roster: [][]byte{alice, bob}}, nil
	}
	if _, err := s.SubmitCommit(ctx, g, 5, alice, nil, []byte("c5"), nil, check); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("SubmitCommit to a group without a view: %v, want ErrNotMember", err)
	}
	if err := s.CreateGroup(ctx, g, bob, 0, []byte("v"), [][]byte{bob}); !errors.Is(err, store.ErrGroupExists) {
		t.Fatalf("CreateGroup over a group without a view: %v, want ErrGroupExists", err)
	}
}
