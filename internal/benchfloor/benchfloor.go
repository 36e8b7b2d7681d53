// Package benchfloor measures the floors that the storage benchmarks are
// read against: what the disk itself gives for durable appends, measured in
// the same run and on the same file system as the figure beside it, so that
// a result reads as a ratio that the machine's noise mostly cancels out of.
//
// A durable write of one record is at least one write and one fsync (raw);
// when several writers share one fsync (group commit), a record costs at
// least its share of a batch write and fsync (batched). A store that keeps
// every acknowledgement behind an fsync cannot beat the batched floor for
// its batch size.
package benchfloor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Floor is one measured floor.
type Floor struct {
	Batch   int           // records per fsync
	Fsyncs  int           // fsyncs done
	PerSync time.Duration // mean time of one write of Batch records and its fsync
}

// RecordsPerSec is how many records per second the floor allows.
func (f Floor) RecordsPerSec() float64 {
	if f.PerSync <= 0 {
		return 0
	}
	return float64(f.Batch) / f.PerSync.Seconds()
}

// WriteFsync appends batch records of size bytes to a new file in dir in
// one write and fsyncs it, again and again for about d (at least 10 times),
// and reports the mean. The file is removed afterwards.
func WriteFsync(dir string, size, batch int, d time.Duration) (Floor, error) {
	if size <= 0 || batch <= 0 {
		return Floor{}, fmt.Errorf("benchfloor: size %d, batch %d: both must be positive", size, batch)
	}
	f, err := os.CreateTemp(dir, "floor-*")
	if err != nil {
		return Floor{}, fmt.Errorf("benchfloor: %w", err)
	}
	defer os.Remove(filepath.Join(dir, filepath.Base(f.Name())))
	buf := make([]byte, size*batch)
	for i := range buf {
		buf[i] = byte(i)
	}
	var n int
	start := time.Now()
	for n < 10 || time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return Floor{}, errors.Join(fmt.Errorf("benchfloor: write: %w", err), f.Close())
		}
		if err := f.Sync(); err != nil {
			return Floor{}, errors.Join(fmt.Errorf("benchfloor: fsync: %w", err), f.Close())
		}
		n++
	}
	elapsed := time.Since(start)
	if err := f.Close(); err != nil {
		return Floor{}, fmt.Errorf("benchfloor: %w", err)
	}
	return Floor{Batch: batch, Fsyncs: n, PerSync: elapsed / time.Duration(n)}, nil
}

// Spaced is WriteFsync for a store whose writes come one at a time, apart:
// each write of one record of size bytes and its fsync follow a pause of
// gap, and PerSync is the median time of a write and its fsync (the pauses
// not counted), over about d of them (at least 10). On a virtual disk an
// fsync after a pause costs more than one right after another (here about
// 280 µs against 150), so a latency measured one message at a time is read
// against this floor, not against WriteFsync's.
func Spaced(dir string, size int, gap, d time.Duration) (Floor, error) {
	if size <= 0 || gap < 0 {
		return Floor{}, fmt.Errorf("benchfloor: size %d, gap %v: size must be positive, gap not negative", size, gap)
	}
	f, err := os.CreateTemp(dir, "floor-*")
	if err != nil {
		return Floor{}, fmt.Errorf("benchfloor: %w", err)
	}
	defer os.Remove(filepath.Join(dir, filepath.Base(f.Name())))
	buf := make([]byte, size)
	var took []time.Duration
	start := time.Now()
	for len(took) < 10 || time.Since(start) < d {
		time.Sleep(gap)
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return Floor{}, errors.Join(fmt.Errorf("benchfloor: write: %w", err), f.Close())
		}
		if err := f.Sync(); err != nil {
			return Floor{}, errors.Join(fmt.Errorf("benchfloor: fsync: %w", err), f.Close())
		}
		took = append(took, time.Since(t))
	}
	if err := f.Close(); err != nil {
		return Floor{}, fmt.Errorf("benchfloor: %w", err)
	}
	slices.Sort(took)
	return Floor{Batch: 1, Fsyncs: len(took), PerSync: took[len(took)/2]}, nil
}

// Mean is the floor of all of fs together (their fsyncs pooled); fs share
// one batch size.
func Mean(fs []Floor) Floor {
	var m Floor
	var total time.Duration
	for _, f := range fs {
		m.Batch = f.Batch
		m.Fsyncs += f.Fsyncs
		total += f.PerSync * time.Duration(f.Fsyncs)
	}
	if m.Fsyncs > 0 {
		m.PerSync = total / time.Duration(m.Fsyncs)
	}
	return m
}

// Floors are the raw and the batched floor of one benchmark's run, each
// measured before and after it: the machine may be shared, and the mean of
// both is nearer to what the run met than either.
type Floors struct {
	Size  int // bytes of a record
	Batch int // records per fsync of the batched floor

	raw, batched []Floor
}

// Measure measures both floors once, for 100 ms each, on the disk of the
// test's temporary folders. Call it while the benchmark's timer is stopped
// (or before it is reset).
func (f *Floors) Measure(tb testing.TB) {
	tb.Helper()
	raw, err := WriteFsync(tb.TempDir(), f.Size, 1, 100*time.Millisecond)
	if err != nil {
		tb.Fatal(err)
	}
	batched, err := WriteFsync(tb.TempDir(), f.Size, f.Batch, 100*time.Millisecond)
	if err != nil {
		tb.Fatal(err)
	}
	f.raw, f.batched = append(f.raw, raw), append(f.batched, batched)
}

// Raw returns the raw floors measured so far.
func (f *Floors) Raw() []Floor { return f.raw }

// Report reports the floors measured, in records per second, beside rate
// (the benchmark's records per second), and floor/ours for the batched
// floor and raw/ours for the raw one: how many times the disk's limit is
// above the result.
func (f *Floors) Report(b *testing.B, rate float64) {
	raw, batched := Mean(f.raw), Mean(f.batched)
	b.ReportMetric(raw.RecordsPerSec(), "raw-floor/s")
	b.ReportMetric(batched.RecordsPerSec(), "batched-floor/s")
	if rate > 0 {
		b.ReportMetric(raw.RecordsPerSec()/rate, "raw/ours")
		b.ReportMetric(batched.RecordsPerSec()/rate, "floor/ours")
	}
}
