package store

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkReceiveTx is the receive path's transaction: store a message,
// log its event and advance the node cursor, committed (synchronous=FULL).
func BenchmarkReceiveTx(b *testing.B) {
	st, err := Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	gid := bytes.Repeat([]byte{1}, GroupIDSize)
	sender := bytes.Repeat([]byte{2}, 32)
	ctx := context.Background()
	if err := st.Update(ctx, func(tx *Tx) error { return tx.PutGroup(Group{ID: gid, Name: "g", State: make([]byte, 4096)}) }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		err := st.Update(ctx, func(tx *Tx) error {
			m, err := tx.AppendMessage(Message{GroupID: gid, MessageID: fmt.Appendf(nil, "m%d", i), Sender: sender, Text: "hello, world", SentAt: time.Now()})
			if err != nil {
				return err
			}
			if _, err := tx.AppendEvent(Event{Kind: EventMessage, GroupID: gid, MessageSeq: m.Seq}); err != nil {
				return err
			}
			return tx.SetNodeCursor(uint64(i + 1))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnreadPage reads and marks read a page of 50 messages out of a
// history of 10000.
func BenchmarkUnreadPage(b *testing.B) {
	st, err := Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	gid := bytes.Repeat([]byte{1}, GroupIDSize)
	ctx := context.Background()
	err = st.Update(ctx, func(tx *Tx) error {
		if err := tx.PutGroup(Group{ID: gid, Name: "g"}); err != nil {
			return err
		}
		for i := range 10000 {
			if _, err := tx.AppendMessage(Message{GroupID: gid, MessageID: fmt.Appendf(nil, "m%d", i), Text: "x", Read: i < 9950}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		err := st.View(ctx, func(tx *Tx) error {
			msgs, _, err := tx.Messages(MessageQuery{GroupID: gid, UnreadOnly: true, Limit: 50})
			if err != nil || len(msgs) != 50 {
				return fmt.Errorf("page: %d %v", len(msgs), err)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
