package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
)

// A write transaction whose context ends midway commits nothing and says
// why, though its statements run on a context that does not end
// (stmt_context.go); the statements after the end fail or the commit does.
func TestUpdateEndsWithItsContext(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	err := st.Update(ctx, func(tx *Tx) error {
		if err := tx.SetNodeCursor(7); err != nil {
			return err
		}
		cancel()
		// Whether this write still runs or finds the transaction rolled
		// back, nothing of it may be committed.
		_ = tx.SetNodeCursor(8)
		return nil
	})
	// (database/sql answers context.Canceled, or ErrTxDone once its
	// rollback for the ended context came first.)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("Update after its context ended: %v, want context.Canceled or sql.ErrTxDone", err)
	}
	if err := st.View(context.Background(), func(tx *Tx) error {
		c, err := tx.NodeCursor()
		if err == nil && c != 0 {
			t.Errorf("cursor %d committed by a transaction whose context ended", c)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The connection serves the next transaction.
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetNodeCursor(9) })
}
