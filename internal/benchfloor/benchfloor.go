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
