package server

import (
	"context"
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

// admit reports a diskFull error unless n more bytes fit; group traffic
// may use the reserve.
func (g *diskGuard) admit(ctx context.Context, m *Metrics, method string, n int64, group bool) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.readAt.IsZero() || time.Since(g.readAt) > diskSample || g.since+n > g.budget/64 {
		used, err := g.store.DiskUsage(ctx)
		if err != nil {
			return fail(nodecp.ErrorCode_internal, "%s: storage failure", method)
		}
		g.used, g.since, g.readAt = used, 0, time.Now()
		m.diskUsed(used)
	}
	limit, kind := g.budget-g.budget/10, "direct"
	if group {
		limit, kind = g.budget, "group"
	}
	if g.used+g.since+n > limit {
		m.refused("diskFull")
		return fail(nodecp.ErrorCode_diskFull, "%s: the node's disk budget for %s messages (%d of %d bytes) is used up; retry later",
			method, kind, limit, g.budget)
	}
	g.since += n
	return nil
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
	return s.srv.disk.admit(ctx, s.srv.cfg.Metrics, method, int64(size), false)
}

// admitGroup applies registration and the disk budget (reserve included)
// to group traffic of size bytes in all.
func (s *session) admitGroup(ctx context.Context, method string, size int) error {
	if err := s.registered(ctx, method); err != nil {
		return err
	}
	return s.srv.disk.admit(ctx, s.srv.cfg.Metrics, method, int64(size), true)
}
