package store

import (
	"bytes"
	"errors"
	"testing"
)

// ReceiptTarget finds a message by its id in its own group only, with
// the number MessageByID gives it; an unknown id is ErrNotFound.
func TestReceiptTarget(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	g, other := testGroupID(1), testGroupID(2)
	sender := bytes.Repeat([]byte{9}, 32)
	mustUpdate(t, st, func(tx *Tx) error {
		for _, id := range [][]byte{g, other} {
			if err := tx.PutGroup(Group{ID: id, Name: "g", State: []byte("s")}); err != nil {
				return err
			}
		}
		for i := range 3 {
			if _, err := tx.AppendMessage(Message{GroupID: g, MessageID: []byte{1, byte(i)}, Sender: sender, Text: "x"}); err != nil {
				return err
			}
		}
		return nil
	})
	mustUpdate(t, st, func(tx *Tx) error {
		for i := range 3 {
			id := []byte{1, byte(i)}
			m, err := tx.MessageByID(g, id)
			if err != nil {
				return err
			}
			seq, err := tx.ReceiptTarget(g, id)
			if err != nil || seq != m.Seq || seq == 0 {
				t.Fatalf("message %d: seq %d, %v; want %d", i, seq, err, m.Seq)
			}
			if _, err := tx.ReceiptTarget(other, id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("message %d found in another group: %v", i, err)
			}
		}
		if _, err := tx.ReceiptTarget(g, []byte{7}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown message: %v", err)
		}
		return nil
	})
}
