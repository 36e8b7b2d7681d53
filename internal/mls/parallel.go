package mls

import (
	"runtime"
	"sync"
)

// This file spreads the independent HPKE encryptions of a commit — the path
// secrets to the resolutions of the copath (RFC 9420 §7.6) and the
// GroupSecrets of the Welcome (§12.4.3.1) — over the cores. Each call
// writes only its own slot of the caller's output, so the output is in the
// same order as when run serially; randomness still comes from the
// package's source (crypto/rand) in every call.

// sealsPerWorker is the least number of encryptions worth a goroutine of
// their own: an HPKE encryption costs about a hundred times more than
// starting one.
const sealsPerWorker = 4

// parallelSeals runs fn(i) for every i in [0, n) on at most GOMAXPROCS
// goroutines, or serially when there are too few calls to share. It
// returns the error of the lowest i that failed; a goroutine stops at its
// first error.
func parallelSeals(n int, fn func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n/sealsPerWorker)
	if workers <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if errs[i] = fn(i); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
