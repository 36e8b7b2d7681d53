package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// Defaults of the quota and expiry fields of Config.
const (
	DefaultMessageTTL     = 30 * 24 * time.Hour
	DefaultExpireInterval = time.Minute
	DefaultDiskBudget     = 10 << 30
)

// diskSample bounds how long a disk-usage reading is trusted.
const diskSample = time.Second

// diskGuard keeps the store within Config.DiskBudget. It reads the
// store's usage at most once per diskSample, or sooner once the bytes
// written since the last reading reach a 64th of the budget, so that a
// flood cannot overshoot the budget by more than that between readings.
// Direct messages may use all but a tenth of the budget: the rest is kept
// for group traffic, as in a queue.
type diskGuard struct {
	budget int64
	store  store.Store

	mu     sync.Mutex
	used   int64     // at the last reading
	since  int64     // bytes accepted since
	readAt time.Time // zero: never read
}

// room reports whether n more bytes fit, and the limit they were held
// to; group traffic may use the reserve. err is the store's, from reading
// its usage.
func (g *diskGuard) room(ctx context.Context, m *Metrics, n int64, group bool) (limit int64, ok bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.readAt.IsZero() || time.Since(g.readAt) > diskSample || g.since+n > g.budget/64 {
		used, err := g.store.DiskUsage(ctx)
		if err != nil {
			return 0, false, err
		}
		g.used, g.since, g.readAt = used, 0, time.Now()
		m.diskUsed(used)
	}
	limit = g.budget - g.budget/10
	if group {
		limit = g.budget
	}
	if g.used+g.since+n > limit {
		return limit, false, nil
	}
	g.since += n
	return limit, true, nil
}

// expireLoop deletes messages older than Config.MessageTTL every
// Config.ExpireInterval until ctx ends.
func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ExpireInterval)
	defer t.Stop()
	for {
		s.expireOnce(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) expireOnce(ctx context.Context) {
	n, err := s.cfg.Store.Expire(ctx, time.Now().Add(-s.cfg.MessageTTL))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("expiring old messages failed", "err", err)
	case n > 0:
		s.cfg.Metrics.expiredMessages(n)
		s.log.Info("expired old messages", "count", n, "ttl", s.cfg.MessageTTL)
	}
	s.expireBlobs(ctx)
	s.expireSlots(ctx)
}

// admitDirect applies registration and the disk budget to a direct
// message of size bytes for recipient; the store applies the queue quotas.
func (s *session) admitDirect(ctx context.Context, method string, recipient []byte, size int) error {
	if err := s.registered(ctx, method); err != nil {
		return err
	}
	if err := s.knownRecipient(ctx, method, recipient); err != nil {
		return err
	}
	return s.admitDisk(ctx, method, size, false)
}

// admitGroup applies registration and the disk budget (reserve included)
// to group traffic of size bytes in all.
func (s *session) admitGroup(ctx context.Context, method string, size int) error {
	if err := s.registered(ctx, method); err != nil {
		return err
	}
	return s.admitDisk(ctx, method, size, true)
}

// admitDisk applies the disk budget (see diskGuard) to size bytes.
func (s *session) admitDisk(ctx context.Context, method string, size int, group bool) error {
	g := s.srv.disk
	if g == nil {
		return nil
	}
	limit, ok, err := g.room(ctx, s.srv.cfg.Metrics, int64(size), group)
	if err != nil {
		return s.storeError(method, fmt.Errorf("read disk usage: %w", err))
	}
	if !ok {
		kind := "direct"
		if group {
			kind = "group"
		}
		s.srv.cfg.Metrics.refused("diskFull")
		return fail(nodecp.ErrorCode_diskFull, "%s: the node's disk budget for %s messages (%d of %d bytes) is used up; retry later",
			method, kind, limit, g.budget)
	}
	return nil
}
