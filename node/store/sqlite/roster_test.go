package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// A group committed before rosters were kept has no known roster: any
// member may commit, and that commit's roster is enforced from then on.
func TestRosterMigrationFromV3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	ctx := context.Background()
	g := storetest.GroupID("old group")
	alice, bob, mallory := storetest.Key("alice"), storetest.Key("bob"), storetest.Key("mallory")
	old, err := openDB(path, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA journal_mode=WAL", migrations[0], migrations[1], migrations[2], "PRAGMA user_version = 3"} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO groups (group_id, epoch, last_seq, created_at) VALUES (?, 5, 9, 1)`, g); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTestStore(t, path, storetest.Limits())
	if gs, err := s.GroupState(ctx, g); err != nil || gs != (store.GroupState{Committed: true, Epoch: 5, LastSeq: 9}) {
		t.Fatalf("GroupState after upgrade = %+v, %v", gs, err)
	}
	if _, _, err := s.FanOut(ctx, g, mallory, nil, []byte("m"), [][]byte{bob}); err != nil {
		t.Fatalf("FanOut to a group without a known roster: %v", err)
	}
	res, err := s.SubmitCommit(ctx, g, 5, alice, nil, []byte("c5"), [][]byte{bob}, nil, nil)
	if err != nil || res != (store.CommitResult{Epoch: 5, GroupSeq: 11}) {
		t.Fatalf("SubmitCommit after upgrade = %+v, %v", res, err)
	}
	if _, _, err := s.FanOut(ctx, g, mallory, nil, []byte("m"), [][]byte{bob}); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("FanOut from a non-member after the first roster: %v, want ErrNotMember", err)
	}
	if _, err := s.SubmitCommit(ctx, g, 6, bob, nil, []byte("c6"), [][]byte{alice}, nil, nil); err != nil {
		t.Fatalf("SubmitCommit from a member: %v", err)
	}
}
