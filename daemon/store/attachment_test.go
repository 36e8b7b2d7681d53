package store

import (
	"bytes"
	"testing"
	"time"
)

// TestAttachmentsLeaveWithTheirMessage: the references of an attachment
// (which hold the file's key) go when the message is deleted by its
// author or expires, also when expiry keeps the group's newest message
// as a blank entry.
func TestAttachmentsLeaveWithTheirMessage(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	g := testGroupID(1)
	sender := bytes.Repeat([]byte{9}, 32)
	var seqs []uint64
	var ids []int64
	mustUpdate(t, st, func(tx *Tx) error {
		if err := tx.PutGroup(Group{ID: g, Name: "g", State: []byte("s")}); err != nil {
			return err
		}
		for i := range 3 {
			m := Message{GroupID: g, MessageID: []byte{2, byte(i)}, Sender: sender, Text: "file", SentAt: time.Unix(100, 0)}
			if i > 0 {
				m.ExpiresAt = time.Unix(int64(1000+i), 0)
			}
			stored, err := tx.AppendMessage(m)
			if err != nil {
				return err
			}
			if err := tx.AddAttachments(g, stored.Seq, [][]byte{[]byte("ref with a key")}); err != nil {
				return err
			}
			seqs, ids = append(seqs, stored.Seq), append(ids, stored.ID)
		}
		return nil
	})
	count := func(seq uint64) int {
		var n int
		mustUpdate(t, st, func(tx *Tx) error {
			refs, err := tx.Attachments(g, seq)
			n = len(refs)
			return err
		})
		return n
	}
	if n := count(seqs[0]); n != 1 {
		t.Fatalf("%d attachment references stored, want 1", n)
	}
	mustUpdate(t, st, func(tx *Tx) error { return tx.DeleteMessageText(ids[0]) })
	if n := count(seqs[0]); n != 0 {
		t.Errorf("a deleted message keeps %d attachment references", n)
	}
	mustUpdate(t, st, func(tx *Tx) error {
		_, err := tx.ExpireMessages(time.Unix(2000, 0))
		return err
	})
	for _, seq := range seqs[1:] {
		if n := count(seq); n != 0 {
			t.Errorf("expired message #%d keeps %d attachment references", seq, n)
		}
	}
}
