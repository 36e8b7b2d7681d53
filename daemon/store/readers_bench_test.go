package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkViewDuringWrites reads a page of history while another
// goroutine commits receive transactions back to back (one fsync each).
// "writer" runs the view on the writer connection, as every view did
// before the reader connections: the in-run baseline. "readers" is View.
func BenchmarkViewDuringWrites(b *testing.B) {
	for _, mode := range []string{"writer", "readers"} {
		b.Run(mode, func(b *testing.B) {
			st, err := Open(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			gid := bytes.Repeat([]byte{1}, GroupIDSize)
			err = st.Update(ctx, func(tx *Tx) error {
				if err := tx.PutGroup(Group{ID: gid, Name: "g"}); err != nil {
					return err
				}
				for i := range 1000 {
					if _, err := tx.AppendMessage(Message{GroupID: gid, MessageID: fmt.Appendf(nil, "m%d", i), Text: "x", SentAt: time.Now()}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			view := st.View
			if mode == "writer" {
				view = func(ctx context.Context, fn func(*Tx) error) error { return st.run(ctx, true, fn) }
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					st.Update(ctx, func(tx *Tx) error {
						_, err := tx.AppendMessage(Message{GroupID: gid, MessageID: fmt.Appendf(nil, "w%d", i), Text: "hello", SentAt: time.Now()})
						return err
					})
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				err := view(ctx, func(tx *Tx) error {
					_, _, err := tx.Messages(MessageQuery{GroupID: gid, Limit: 50})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
		})
	}
}
