package server

import (
	"sync"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per identity, shared by all of that
// identity's connections.
type limiters struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// maxIdleLimiters bounds the map: above it, buckets that are full again
// (their identity has been idle) are dropped, which loses nothing.
const maxIdleLimiters = 4096

func newLimiters(limit rate.Limit, burst int) *limiters {
	return &limiters{limit: limit, burst: burst, m: make(map[string]*rate.Limiter)}
}

// get returns identity's bucket.
func (l *limiters) get(identity []byte) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[string(identity)]
	if lim != nil {
		return lim
	}
	if len(l.m) >= maxIdleLimiters {
		for k, v := range l.m {
			if v.Tokens() >= float64(l.burst) {
				delete(l.m, k)
			}
		}
	}
	lim = rate.NewLimiter(l.limit, l.burst)
	l.m[string(identity)] = lim
	return lim
}
