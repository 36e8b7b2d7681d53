package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"testing"

	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// BenchmarkFanOutEntriesFloor is the floor of a 1000-recipient fan-out:
// its 1000 entries written alone, with their queue ids and numbers known
// beforehand, by the statement FanOut uses, in one durable transaction per
// iteration.
func BenchmarkFanOutEntriesFloor(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	recipients := make([][]byte, 1000)
	for i := range recipients {
		recipients[i] = storetest.Key(fmt.Sprint("recipient ", i))
	}
	err := s.write(ctx, "fill", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO queues (recipient, last_seq, depth) SELECT unhex(value), 0, 0 FROM json_each(?)`,
			hexList(recipients))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	cpu := processCPU(b)
	i := 0
	for b.Loop() {
		i++
		entries := []byte{'{'}
		for q := range recipients {
			if q > 0 {
				entries = append(entries, ',')
			}
			entries = append(entries, '"')
			entries = strconv.AppendInt(entries, int64(q+1), 10)
			entries = append(entries, '"', ':')
			entries = strconv.AppendInt(entries, int64(i), 10)
		}
		entries = append(entries, '}')
		if err := s.write(ctx, "floor", func(ctx context.Context, tx *sql.Tx) error {
			_, err := s.exec(ctx, tx, insertCachedEntries, 1, 1, string(entries))
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu, i*len(recipients), "cpu-µs/delivery")
}
