package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// BenchmarkFanOut1KiBTo1 is one durable fan-out of a 1 KiB application
// message in a two-member group, with a client message id, against the
// throwaway cluster of the tests, for a group view of 2 KiB (a small
// group's) and of 256 KiB (about a 1000-member group's). ns/op is the
// wall time of one fan-out, one transaction and log flush each.
func BenchmarkFanOut1KiBTo1(b *testing.B) {
	for _, view := range []int{2 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("view=%dKiB", view>>10), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			g, sender, r := storetest.GroupID("bench"), storetest.Key("sender"), storetest.Key("recipient")
			if err := s.CreateGroup(ctx, g, sender, 0, make([]byte, view), [][]byte{sender, r}); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 1024)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.FanOut(ctx, g, sender, []byte(fmt.Sprint("m", i)), payload, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
