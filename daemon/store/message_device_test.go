package store

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
)

// TestMessageSenderDevice: the sending device and its label are stored
// with a message, copied with a merged chat's history, and a message
// stored before the schema recorded devices reads with none.
func TestMessageSenderDevice(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	g, other := testGroupID(1), testGroupID(2)
	dev := bytes.Repeat([]byte{0xd1}, 32)
	mustUpdate(t, st, func(tx *Tx) error {
		for _, id := range [][]byte{g, other} {
			if err := tx.PutGroup(Group{ID: id, Name: "g", State: []byte("s")}); err != nil {
				return err
			}
		}
		if _, err := tx.AppendMessage(Message{GroupID: g, MessageID: []byte{1}, Sender: []byte("alice"), Text: "hi",
			SenderDevice: dev, SenderDeviceName: "laptop\x1b[2J"}); err != nil {
			return err
		}
		_, err := tx.AppendMessage(Message{GroupID: g, MessageID: []byte{2}, Sender: []byte("alice"), Text: "none"})
		return err
	})
	var n int
	mustUpdate(t, st, func(tx *Tx) (err error) {
		n, err = tx.CopyMessages(g, other)
		return err
	})
	if n != 2 {
		t.Fatalf("copied %d messages, want 2", n)
	}
	for _, id := range [][]byte{g, other} {
		var m1, m2 Message
		mustUpdate(t, st, func(tx *Tx) (err error) {
			if m1, err = tx.Message(id, 1); err != nil {
				return err
			}
			m2, err = tx.Message(id, 2)
			return err
		})
		if !bytes.Equal(m1.SenderDevice, dev) || m1.SenderDeviceName != "laptop\x1b[2J" {
			t.Fatalf("group %x: device %x %q", id[:1], m1.SenderDevice, m1.SenderDeviceName)
		}
		if m2.SenderDevice != nil || m2.SenderDeviceName != "" {
			t.Fatalf("group %x: message without a device reads %x %q", id[:1], m2.SenderDevice, m2.SenderDeviceName)
		}
	}

	// Back to the schema before devices of messages, with a message
	// written then.
	version := -1
	for i, m := range migrations {
		if m == migrationMessageDevices {
			version = i
		}
	}
	if version < 0 {
		t.Fatal("no migration adds the devices of messages")
	}
	for _, q := range []string{
		"ALTER TABLE messages DROP COLUMN sender_device",
		"ALTER TABLE messages DROP COLUMN sender_device_name",
		"ALTER TABLE outbox DROP COLUMN fan_out",
		"ALTER TABLE groups DROP COLUMN ratchets",
		"ALTER TABLE groups DROP COLUMN state_tag",
		fmt.Sprintf("PRAGMA user_version = %d", version),
		`INSERT INTO messages (group_id, seq, message_id, sender, text, sent_at, received_at, read, outgoing)
			VALUES (x'` + hex.EncodeToString(g) + `', 3, x'03', x'', 'old', 0, 0, 0, 0)`,
	} {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	st = openTestStore(t, dir)
	var msgs []Message
	mustUpdate(t, st, func(tx *Tx) (err error) {
		msgs, _, err = tx.Messages(MessageQuery{GroupID: g})
		return err
	})
	if len(msgs) != 3 || msgs[2].Text != "old" {
		t.Fatalf("%d messages after the upgrade", len(msgs))
	}
	for _, m := range msgs {
		if m.SenderDevice != nil || m.SenderDeviceName != "" {
			t.Fatalf("message %d after the upgrade: device %x %q", m.Seq, m.SenderDevice, m.SenderDeviceName)
		}
	}
}
