package benchfloor

import (
	"sync"
	"testing"
	"time"
)

func TestWriteFsync(t *testing.T) {
	f, err := WriteFsync(t.TempDir(), 1024, 16, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if f.Batch != 16 || f.Fsyncs < 10 || f.PerSync <= 0 || f.RecordsPerSec() <= 0 {
		t.Fatalf("floor %+v", f)
	}
	m := Mean([]Floor{{Batch: 4, Fsyncs: 1, PerSync: time.Millisecond}, {Batch: 4, Fsyncs: 3, PerSync: 3 * time.Millisecond}})
	if m != (Floor{Batch: 4, Fsyncs: 4, PerSync: 2500 * time.Microsecond}) || m.RecordsPerSec() != 1600 {
		t.Fatalf("Mean = %+v (%v records/s)", m, m.RecordsPerSec())
	}
	if (Mean(nil) != Floor{}) || Mean(nil).RecordsPerSec() != 0 {
		t.Fatal("Mean of nothing is not zero")
	}
	if _, err := WriteFsync(t.TempDir(), 0, 1, time.Millisecond); err == nil {
		t.Fatal("size 0 accepted")
	}
	if _, err := WriteFsync(t.TempDir()+"/missing", 1, 1, time.Millisecond); err == nil {
		t.Fatal("missing folder accepted")
	}
	s, err := Spaced(t.TempDir(), 1024, time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.Batch != 1 || s.Fsyncs < 10 || s.PerSync <= 0 {
		t.Fatalf("spaced floor %+v", s)
	}
	if _, err := Spaced(t.TempDir(), 1, -time.Second, time.Millisecond); err == nil {
		t.Fatal("negative gap accepted")
	}
}

// BenchmarkWriteFsync is the raw floor (one 1 KiB record per fsync) and the
// batched floor (64 records per fsync) on the temporary folder's disk.
func BenchmarkWriteFsync(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(map[int]string{1: "raw", 64: "batched64"}[batch], func(b *testing.B) {
			dir := b.TempDir()
			var last Floor
			for b.Loop() {
				f, err := WriteFsync(dir, 1024, batch, 0)
				if err != nil {
					b.Fatal(err)
				}
				last = f
			}
			b.ReportMetric(last.RecordsPerSec(), "records/s")
		})
	}
}

// Concurrent makes exactly b.N calls, each number once, spread over the
// goroutines.
func TestConcurrent(t *testing.T) {
	var mu sync.Mutex
	seen := map[int64]int{}
	var n int
	r := testing.Benchmark(func(b *testing.B) {
		clear(seen)
		n = b.N
		Concurrent(b, 4, "calls/s", func(i int, k int64) error {
			mu.Lock()
			seen[k]++
			mu.Unlock()
			return nil
		})
	})
	if r.N != n || len(seen) != n {
		t.Fatalf("%d calls for b.N = %d", len(seen), n)
	}
	for k, c := range seen {
		if k < 0 || k >= int64(n) || c != 1 {
			t.Fatalf("call %d made %d times (b.N = %d)", k, c, n)
		}
	}
	if r.Extra["calls/s"] <= 0 || r.Extra["p99-ms"] < r.Extra["p50-ms"] {
		t.Fatalf("metrics %v", r.Extra)
	}
}
