package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/node/store"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// KeyPackage fetches are bounded twice, since a drain costs its victim
// more than its author. Per requester (Config.FetchRate, FetchBurst): past
// it a fetch is refused with rateLimited. Per target (TargetFetchRate,
// TargetFetchBurst), whoever asks: past it a fetch gets the target's
// last-resort package, which is not consumed, so invitations still work
// while nobody can empty the directory faster than its owner refills it.
// A consuming fetch that leaves the target KeyPackageLowWater or fewer
// packages pushes a low-water notice into the target's queue (at most one
// per lowWaterEvery, and so no more than the per-target limit allows), so
// the owner's daemon uploads more within seconds.
//
// A peek gets the last-resort package and consumes nothing, so it spends
// only the requester's budget: it shows nothing that a fetch past the
// target's limit does not show anyone, and takes nothing from the target.

// Defaults of the KeyPackage fields of Config.
const (
	DefaultFetchRate        = 1 // per second per requester
	DefaultFetchBurst       = 100
	DefaultTargetFetchRate  = rate.Limit(1.0 / 30) // per second per target
	DefaultTargetFetchBurst = 5
	DefaultLowWater         = 5
	lowWaterEvery           = time.Second
)

// NoticeKeyPackagesLow is the payload of the node's low-water notice (an
// envelope with an empty sender).
const NoticeKeyPackagesLow = "qpq-node:keyPackagesLow"

// fetchKeyPackage serves fetchKeyPackage for target's packages in suite,
// a peek or a consuming fetch. The rate limits are per identity, whatever
// the suite.
func (s *session) fetchKeyPackage(ctx context.Context, method string, target []byte, suite uint16, peek bool) ([]byte, error) {
	// Only registered identities have packages; asking first keeps the
	// per-target buckets to those.
	switch ok, err := s.srv.isRegistered(ctx, target); {
	case err != nil:
		return nil, s.storeError(method, err)
	case !ok:
		return nil, fail(nodecp.ErrorCode_noKeyPackage, "%s: no key package left for that identity", method)
	}
	if !s.srv.fetchers.get(s.identity).Allow() {
		s.srv.cfg.Metrics.refused("keyPackageFetchRate")
		return nil, fail(nodecp.ErrorCode_rateLimited, "%s: too many KeyPackage fetches from %x; slow down", method, s.identity)
	}
	return s.targetKeyPackage(ctx, method, target, suite, peek)
}

// targetKeyPackage is fetchKeyPackage for a registered target once the
// requester's budget is paid: a peek, or a consuming fetch within the
// target's own limit.
func (s *session) targetKeyPackage(ctx context.Context, method string, target []byte, suite uint16, peek bool) ([]byte, error) {
	dir := directoryKey(target, suite)
	if peek {
		pkg, err := s.srv.cfg.Store.LastResortKeyPackage(ctx, dir)
		if errors.Is(err, store.ErrNoKeyPackage) {
			return nil, fail(nodecp.ErrorCode_noKeyPackage, "%s: that identity has no last-resort KeyPackage to peek at", method)
		}
		if err != nil {
			return nil, s.storeError(method, err)
		}
		return pkg, nil
	}
	if !s.srv.targets.get(target).Allow() {
		s.srv.cfg.Metrics.refused("keyPackageTargetRate")
		pkg, err := s.srv.cfg.Store.LastResortKeyPackage(ctx, dir)
		if errors.Is(err, store.ErrNoKeyPackage) {
			return nil, fail(nodecp.ErrorCode_rateLimited, "%s: %x's KeyPackages are fetched too often and it has no last-resort one; retry later", method, target)
		}
		if err != nil {
			return nil, s.storeError(method, err)
		}
		return pkg, nil
	}
	pkg, err := s.srv.cfg.Store.TakeKeyPackage(ctx, dir)
	if errors.Is(err, store.ErrNoKeyPackage) && suite != defaultSuite {
		return nil, fail(nodecp.ErrorCode_noKeyPackage, "%s: no KeyPackage of cipher suite 0x%04x left for that identity", method, suite)
	}
	if err != nil {
		return nil, s.storeError(method, err)
	}
	s.lowWater(ctx, target, dir)
	return pkg, nil
}

// lowWater pushes a low-water notice to target when its directory dir (of
// one suite) runs low.
func (s *session) lowWater(ctx context.Context, target, dir []byte) {
	n, err := s.srv.cfg.Store.CountKeyPackages(ctx, dir)
	if err != nil {
		s.log.Warn("could not count KeyPackages for the low-water notice", "target", fmt.Sprintf("%x", target), "err", err)
		return
	}
	if n.Remaining > s.srv.cfg.KeyPackageLowWater || !s.srv.notices.get(target).Allow() {
		return
	}
	if _, _, err := s.srv.cfg.Store.Enqueue(ctx, target, nil, nil, []byte(NoticeKeyPackagesLow)); err != nil {
		s.log.Warn("could not queue a low-water notice", "target", fmt.Sprintf("%x", target), "err", err)
		return
	}
	s.srv.cfg.Metrics.lowWaterNotice()
	s.srv.notifier.notify(target)
}
