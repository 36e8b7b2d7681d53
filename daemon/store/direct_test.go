package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestDirectChatsAndCopyMessages(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	peer := bytes.Repeat([]byte{7}, 32)
	a, b := bytes.Repeat([]byte{1}, GroupIDSize), bytes.Repeat([]byte{2}, GroupIDSize)
	mustUpdate(t, st, func(tx *Tx) error {
		for _, id := range [][]byte{a, b} {
			if err := tx.PutGroup(Group{ID: id, Name: "d", State: []byte("s")}); err != nil {
				return err
			}
		}
		if _, err := tx.DirectChat(a); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DirectChat of a plain group: %v, want ErrNotFound", err)
		}
		if err := tx.PutDirectChat(DirectChat{GroupID: b, Peer: peer}); err != nil {
			return err
		}
		if err := tx.PutDirectChat(DirectChat{GroupID: a, Peer: peer[:5]}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("short peer: %v, want ErrInvalid", err)
		}
		if err := tx.PutDirectChat(DirectChat{GroupID: a, Peer: peer}); err != nil {
			return err
		}
		for i, g := range [][]byte{a, b, b, a} {
			if _, err := tx.AppendMessage(Message{GroupID: g, MessageID: []byte{byte(i)}, Text: string(rune('p' + i)), Read: i == 2}); err != nil {
				return err
			}
		}
		ds, err := tx.DirectChats(peer)
		if err != nil || len(ds) != 2 || !bytes.Equal(ds[0].GroupID, a) || ds[0].MergedInto != nil {
			t.Fatalf("DirectChats = %+v, %v", ds, err)
		}
		if err := tx.PutDirectChat(DirectChat{GroupID: b, Peer: peer, MergedInto: a}); err != nil {
			return err
		}
		if d, err := tx.DirectChat(b); err != nil || !bytes.Equal(d.MergedInto, a) {
			t.Fatalf("merged DirectChat = %+v, %v", d, err)
		}
		if n, err := tx.CopyMessages(b, a); err != nil || n != 2 {
			t.Fatalf("CopyMessages = %d, %v; want 2", n, err)
		}
		// Copying again copies nothing: a message is never stored twice.
		if n, err := tx.CopyMessages(b, a); err != nil || n != 0 {
			t.Fatalf("second CopyMessages = %d, %v; want 0", n, err)
		}
		ms, _, err := tx.Messages(MessageQuery{GroupID: a})
		if err != nil {
			return err
		}
		var got string
		for i, m := range ms {
			if m.Seq != uint64(i+1) {
				t.Fatalf("seq %d at %d", m.Seq, i)
			}
			got += m.Text
		}
		if got != "psqr" || !ms[3].Read || ms[2].Read {
			t.Fatalf("merged history %q (read %v %v)", got, ms[2].Read, ms[3].Read)
		}
		all, _, err := tx.Messages(MessageQuery{})
		if err != nil || len(all) != 4 {
			t.Fatalf("history of all groups: %d messages, %v; want 4, each once", len(all), err)
		}
		if n, err := tx.CountUnread(nil); err != nil || n != 3 {
			t.Fatalf("unread after the copy: %d, %v; want 3 (p, s and the copy of q)", n, err)
		}
		return nil
	})
}
