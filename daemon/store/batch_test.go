package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// A failed savepoint takes only its own writes with it: the other
// changes of the transaction commit, and the error comes back unchanged.
func TestSavepointRollsBackOnlyItsWork(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	boom := errors.New("boom")
	var errs [3]error
	mustUpdate(t, st, func(tx *Tx) error {
		errs[0] = tx.Savepoint(func(tx *Tx) error { return tx.SetNodeCursor(1) })
		errs[1] = tx.Savepoint(func(tx *Tx) error {
			if _, err := tx.AppendEvent(Event{Kind: EventConnection, State: "lost"}); err != nil {
				return err
			}
			if err := tx.SetNodeCursor(2); err != nil {
				return err
			}
			return boom
		})
		// Nested: the inner one fails, the outer one keeps its own write.
		errs[2] = tx.Savepoint(func(tx *Tx) error {
			if err := tx.SetNodeCursor(3); err != nil {
				return err
			}
			if err := tx.Savepoint(func(tx *Tx) error {
				if err := tx.SetNodeCursor(4); err != nil {
					return err
				}
				return boom
			}); !errors.Is(err, boom) {
				t.Errorf("inner savepoint: %v", err)
			}
			return nil
		})
		// Nested the other way: the inner one succeeds, the outer one
		// fails, and both are rolled back (the savepoints share a name).
		if err := tx.Savepoint(func(tx *Tx) error {
			if err := tx.Savepoint(func(tx *Tx) error { return tx.SetNodeCursor(5) }); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Errorf("outer savepoint: %v", err)
		}
		return nil
	})
	if errs[0] != nil || !errors.Is(errs[1], boom) || errs[2] != nil {
		t.Fatalf("savepoints: %v", errs)
	}
	st.View(context.Background(), func(tx *Tx) error {
		if c, err := tx.NodeCursor(); err != nil || c != 3 {
			t.Errorf("cursor = %d, %v; want 3", c, err)
		}
		if evs, err := tx.EventsAfter(0, 10); err != nil || len(evs) != 0 {
			t.Errorf("events of the failed savepoint: %v %v", evs, err)
		}
		return nil
	})
}

// UpdateNoSync commits, and hands the connection back as every other
// transaction needs it: synchronous=FULL.
func TestUpdateNoSyncRestoresFullSync(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	ctx := context.Background()
	if err := st.UpdateNoSync(ctx, func(tx *Tx) error { return tx.SetNodeCursor(5) }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := st.UpdateNoSync(ctx, func(tx *Tx) error {
		if err := tx.SetNodeCursor(6); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failed UpdateNoSync: %v", err)
	}
	var mode int
	if err := st.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", mode, err)
	}
	st.View(ctx, func(tx *Tx) error {
		if c, err := tx.NodeCursor(); err != nil || c != 5 {
			t.Errorf("cursor = %d, %v; want 5", c, err)
		}
		return nil
	})
}

// A process that ends right after UpdateNoSync, without closing the store,
// loses nothing: only a power cut or an OS crash may.
func TestUpdateNoSyncSurvivesProcessCrash(t *testing.T) {
	if dir := os.Getenv("QPD_STORE_CRASH_DIR"); dir != "" {
		st, err := Open(context.Background(), dir)
		if err != nil {
			os.Exit(3)
		}
		if err := st.UpdateNoSync(context.Background(), func(tx *Tx) error { return tx.SetNodeCursor(42) }); err != nil {
			os.Exit(4)
		}
		os.Exit(0) // no Close
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestUpdateNoSyncSurvivesProcessCrash$")
	cmd.Env = append(os.Environ(), "QPD_STORE_CRASH_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	st := openTestStore(t, dir)
	st.View(context.Background(), func(tx *Tx) error {
		if c, err := tx.NodeCursor(); err != nil || c != 42 {
			t.Errorf("cursor after the crash = %d, %v; want 42", c, err)
		}
		return nil
	})
}

// When a savepoint itself fails, the transaction does not commit, even if
// the function given to Update goes on and returns nil.
func TestBrokenSavepointFailsTheTransaction(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	boom := errors.New("boom")
	var sperr error
	err := st.Update(context.Background(), func(tx *Tx) error {
		if err := tx.SetNodeCursor(1); err != nil {
			return err
		}
		sperr = tx.Savepoint(func(tx *Tx) error {
			// Gone before Savepoint rolls back to it.
			if _, err := tx.tx.ExecContext(tx.ctx, "RELEASE sp"); err != nil {
				return err
			}
			return boom
		})
		return nil
	})
	if sperr == nil || errors.Is(sperr, boom) {
		t.Fatalf("Savepoint = %v, want its own failure", sperr)
	}
	if err == nil {
		t.Fatal("Update committed a transaction whose savepoint failed")
	}
	st.View(context.Background(), func(tx *Tx) error {
		if c, err := tx.NodeCursor(); err != nil || c != 0 {
			t.Errorf("cursor = %d, %v; want 0", c, err)
		}
		return nil
	})
}
