package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestOwedReceipts: notes survive a reopen, come back oldest first, are
// deleted up to an id, and stop at MaxOwedReceipts.
func TestOwedReceipts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st := openTestStore(t, dir)
	mustUpdate(t, st, func(tx *Tx) error {
		for i := range MaxOwedReceipts {
			ok, err := tx.OweReceipt([]byte("group"), fmt.Appendf(nil, "m%d", i))
			if err != nil || !ok {
				return fmt.Errorf("note %d: %v, %v", i, ok, err)
			}
		}
		if ok, err := tx.OweReceipt([]byte("group"), []byte("one too many")); err != nil || ok {
			return fmt.Errorf("a note past the bound: %v, %v", ok, err)
		}
		return nil
	})
	st.Close()
	st = openTestStore(t, dir)
	mustUpdate(t, st, func(tx *Tx) error {
		rs, err := tx.OwedReceipts(3)
		if err != nil {
			return err
		}
		if len(rs) != 3 || string(rs[0].MessageID) != "m0" || string(rs[2].MessageID) != "m2" || string(rs[0].GroupID) != "group" {
			return fmt.Errorf("first page: %+v", rs)
		}
		if err := tx.DeleteOwedReceipts(rs[1].ID); err != nil {
			return err
		}
		rs, err = tx.OwedReceipts(1)
		if err != nil {
			return err
		}
		if len(rs) != 1 || string(rs[0].MessageID) != "m2" {
			return fmt.Errorf("after deleting two: %+v", rs)
		}
		if ok, err := tx.OweReceipt([]byte("group"), []byte("room again")); err != nil || !ok {
			return fmt.Errorf("a note after deletes: %v, %v", ok, err)
		}
		return nil
	})
}
