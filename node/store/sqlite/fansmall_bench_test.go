package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// BenchmarkFanOut1KiBTo1 is one durable fan-out of a 1 KiB application
// message in a two-member group, with a client message id: the node's part
// of a message in a direct chat. The group's view is 2 KiB, about a small
// group's. cpu-µs/msg is the process's CPU time per fan-out.
func BenchmarkFanOut1KiBTo1(b *testing.B) {
	s, g, sender := benchPair(b)
	ctx := context.Background()
	payload := make([]byte, 1024)
	b.ReportAllocs()
	i := 0
	cpu := processCPU(b)
	for b.Loop() {
		if _, err := s.FanOut(ctx, g, sender, []byte(fmt.Sprint("m", i)), payload, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, cpu, i, "cpu-µs/msg")
}

// BenchmarkFanOutBatch1KiBTo1 is BenchmarkFanOut1KiBTo1 with the messages
// in FanOutBatch calls of 16, as qpd sends a burst: cpu-µs/msg is the CPU
// time per message.
func BenchmarkFanOutBatch1KiBTo1(b *testing.B) {
	s, g, sender := benchPair(b)
	ctx := context.Background()
	payload := make([]byte, 1024)
	const per = 16
	b.ReportAllocs()
	i := 0
	cpu := processCPU(b)
	for b.Loop() {
		items := make([]store.FanOutItem, per)
		for k := range items {
			items[k] = store.FanOutItem{GroupID: g, ClientMsgID: []byte(fmt.Sprint("m", i)), Payload: payload}
			i++
		}
		if _, err := s.FanOutBatch(ctx, sender, items); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu, i, "cpu-µs/msg")
}

// benchPair is a store with a two-member group of a 2 KiB view: the group
// and the sender.
func benchPair(b *testing.B) (*Store, []byte, []byte) {
	s := benchStore(b)
	g, sender, r := storetest.GroupID("bench"), storetest.Key("sender"), storetest.Key("recipient")
	if err := s.CreateGroup(context.Background(), g, sender, 0, make([]byte, 2048), [][]byte{sender, r}); err != nil {
		b.Fatal(err)
	}
	return s, g, sender
}
