package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestDeviceListVersionPersists: the highest accepted version only rises
// and survives a reopen.
func TestDeviceListVersionPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st := openTestStore(t, dir)
	user := bytes.Repeat([]byte{7}, 32)
	mustUpdate(t, st, func(tx *Tx) error {
		if v, err := tx.DeviceListVersion(user); err != nil || v != 0 {
			t.Errorf("unknown user: %d, %v", v, err)
		}
		if err := tx.NoteDeviceListVersion(user, 5); err != nil {
			return err
		}
		return tx.NoteDeviceListVersion(user, 3)
	})
	if err := st.Update(context.Background(), func(tx *Tx) error { return tx.NoteDeviceListVersion(user[:31], 1) }); !errors.Is(err, ErrInvalid) {
		t.Errorf("short user key: %v", err)
	}
	st.Close()
	st = openTestStore(t, dir)
	if err := st.View(context.Background(), func(tx *Tx) error {
		v, err := tx.DeviceListVersion(user)
		if err != nil || v != 5 {
			t.Errorf("after reopen: %d, %v, want 5", v, err)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
