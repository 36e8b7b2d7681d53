package backend

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
)

// BenchmarkApplyReceipt applies one delivery receipt naming six messages
// (about what one receipt names when messages come one after the other)
// in a transaction of its own, committed without waiting for the disk:
// the per-message reads and writes of a receipt, which the fsync of a
// real commit would hide. Each receipt is of another member, so every
// state is new.
func BenchmarkApplyReceipt(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sg := store.Group{ID: bytes.Repeat([]byte{1}, store.GroupIDSize), Name: "g", State: []byte("s")}
	const msgs, per = 600, 6
	ids := make([][]byte, msgs)
	if err := st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutGroup(sg); err != nil {
			return err
		}
		for i := range ids {
			ids[i] = binary.BigEndian.AppendUint64(bytes.Repeat([]byte{7}, 24), uint64(i))
			if _, err := tx.AppendMessage(store.Message{GroupID: sg.ID, MessageID: ids[i], Sender: bytes.Repeat([]byte{9}, 32),
				Text: "a message of some length, as they come", Outgoing: true, Read: true, SentAt: time.Unix(1700000000, 0)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := processCPU(b)
	for i := 0; b.Loop(); i++ {
		member := binary.BigEndian.AppendUint64(bytes.Repeat([]byte{5}, 24), uint64(i))
		r := content.Receipt{At: time.Unix(1700000001, 0)}
		for j := range per {
			r.Statuses = append(r.Statuses, content.MessageStatus{ID: ids[(i*per+j)%msgs], Status: content.StatusDelivered})
		}
		if err := st.UpdateNoSync(ctx, func(tx *store.Tx) error { return applyReceipt(tx, &sg, &r, member) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-us/op")
}
