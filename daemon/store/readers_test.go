package store

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// TestViewDoesNotWaitForWrite: a view completes, and sees the last
// committed state, while a write transaction is held open.
func TestViewDoesNotWaitForWrite(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	ctx := context.Background()
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetNodeCursor(3) })
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- st.Update(ctx, func(tx *Tx) error {
			if err := tx.SetNodeCursor(9); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var got uint64
	err := st.View(vctx, func(tx *Tx) error {
		var err error
		got, err = tx.NodeCursor()
		return err
	})
	close(release)
	if err != nil {
		t.Fatalf("View during a held write: %v", err)
	}
	if got != 3 {
		t.Fatalf("View saw cursor %d, want the committed 3", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Update: %v", err)
	}
	st.View(ctx, func(tx *Tx) error {
		if c, err := tx.NodeCursor(); err != nil || c != 9 {
			t.Errorf("cursor after commit: %d %v", c, err)
		}
		return nil
	})
}

// TestViewCannotWrite: a view's connection refuses writes at the database,
// not only in the Tx methods.
func TestViewCannotWrite(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	ctx := context.Background()
	for _, q := range []string{
		"UPDATE node_state SET cursor = 77",
		"PRAGMA user_version = 999",
		"CREATE TABLE intruder(x)",
	} {
		err := st.View(ctx, func(tx *Tx) error {
			_, err := tx.execAny(q)
			return err
		})
		if err == nil {
			t.Errorf("%q in a view succeeded", q)
		}
	}
	var v int
	if err := st.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v == 999 {
		t.Fatalf("user_version = %d (%v)", v, err)
	}
}

// TestScrubWithReaders: views running beside writes, and reader
// connections left idle, do not keep the log from being truncated.
func TestScrubWithReaders(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st.View(ctx, func(tx *Tx) error { _, err := tx.NodeCursor(); return err })
			}
		}()
	}
	for i := range 50 {
		mustUpdate(t, st, func(tx *Tx) error { return tx.SetNodeCursor(uint64(i + 1)) })
		if i%10 == 9 {
			if err := st.Scrub(ctx); err != nil {
				t.Errorf("Scrub beside views: %v", err)
			}
		}
	}
	close(stop)
	wg.Wait()
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetNodeCursor(100) })
	if err := st.Scrub(ctx); err != nil {
		t.Fatalf("Scrub with idle readers: %v", err)
	}
	fi, err := os.Stat(st.Path() + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 0 {
		t.Fatalf("log is %d bytes after Scrub, want 0", fi.Size())
	}
}
