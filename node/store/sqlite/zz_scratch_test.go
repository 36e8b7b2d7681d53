package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/quicproquo/quicproquo/node/store/storetest"
)

func BenchmarkScratchJournal(b *testing.B) {
	for _, variant := range []string{"plain", "orfail", "plainNoBody", "orfailNoBody"} {
		b.Run(variant, func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			keys := make([][]byte, 1000)
			for i := range keys {
				keys[i] = storetest.Key(fmt.Sprint("recipient ", i))
			}
			list := hexList(keys)
			ins := insertSharedEntries
			if strings.HasPrefix(variant, "orfail") {
				ins = strings.Replace(ins, "INSERT INTO", "INSERT OR FAIL INTO", 1)
			}
			st, err := s.w.Prepare(ins)
			if err != nil {
				b.Fatal(err)
			}
			cpu := processCPU(b)
			i := 0
			for b.Loop() {
				err := s.write(ctx, "x", func(ctx context.Context, tx *sql.Tx) error {
					if _, err := s.exec(ctx, tx, advanceQueues, list); err != nil {
						return err
					}
					body := int64(1)
					if !strings.HasSuffix(variant, "NoBody") {
						if err := s.queryRow(ctx, tx, insertSharedBody, []byte{}, []byte{}, []byte("x"), 1, 1000).Scan(&body); err != nil {
							return err
						}
					}
					_, err := tx.Stmt(st).Exec(body, i, list, 1<<30)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportCPU(b, cpu, i*1000, "cpu-µs/delivery")
		})
	}
}
