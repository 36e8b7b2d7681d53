package benchfloor

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent runs b.N calls from k goroutines at once (goroutine i calls
// call(i, n) for the calls n it takes, each a distinct number below b.N),
// timed from b.ResetTimer to the last answer, and reports the calls per
// second as unit ("deliveries/s") with the p50 and p99 latency of one
// call. It returns the rate. A failed call fails the benchmark.
func Concurrent(b *testing.B, k int, unit string, call func(i int, n int64) error) float64 {
	var (
		left atomic.Int64
		wg   sync.WaitGroup
		lat  = make([][]time.Duration, k)
	)
	left.Store(int64(b.N))
	b.ResetTimer()
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := left.Add(-1); n >= 0; n = left.Add(-1) {
				start := time.Now()
				if err := call(i, n); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return 0
	}
	slices.Sort(all)
	rate := float64(len(all)) / b.Elapsed().Seconds()
	b.ReportMetric(rate, unit)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	return rate
}
