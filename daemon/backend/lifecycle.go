package backend

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// This file is the lifecycle of what qpd keeps, on the clock Config.Now.
//
// KeyPackages: each lives DefaultKeyPackageLifetime (90 days). Those
// that will expire within Config.KeyPackageRotateBefore are replaced at
// the next top-up (the last-resort one by a new last-resort one, which the
// node puts in its place; consumable ones by new ones, as if they were
// gone). A private half is deleted Config.KeyPackageGrace after its
// KeyPackage expired, whether a Welcome used it or not: one the node
// handed out to a peer who never invited (drained) no longer stays
// forever. Deleted halves leave the disk (the store scrubs).
//
// History and events: Config.Retention prunes messages and events older
// than its ages; the zero value keeps everything.

// Retention says how long history and events are kept (0: for ever).
type Retention struct {
	Messages time.Duration
	Events   time.Duration
}

// keyStock is what the store holds of this identity's KeyPackages in one
// cipher suite.
type keyStock struct {
	// expiring counts the consumable ones that expire within the rotation
	// window.
	expiring int
	// freshLastResort is set when a last-resort one outlives the window.
	freshLastResort bool
}

// keyPackageStock is the stock of every suite: a KeyPackage's suite is
// its cipher_suite field (RFC 9420 §10: after the 2-byte version).
func (b *Backend) keyPackageStock(ctx context.Context, now time.Time) (map[mls.CipherSuite]keyStock, error) {
	stocks := map[mls.CipherSuite]keyStock{}
	var kps []store.KeyPackageSecret
	if err := b.view(ctx, func(tx *store.Tx) (err error) { kps, err = tx.KeyPackages(); return }); err != nil {
		return nil, fmt.Errorf("read key packages: %w", err)
	}
	horizon := now.Add(b.cfg.KeyPackageRotateBefore)
	for _, kp := range kps {
		clear(kp.Secrets)
		if len(kp.KeyPackage) < 4 {
			continue
		}
		cs := mls.CipherSuite(binary.BigEndian.Uint16(kp.KeyPackage[2:4]))
		st := stocks[cs]
		soon := !kp.ExpiresAt.IsZero() && kp.ExpiresAt.Before(horizon)
		switch {
		case kp.LastResort && !soon && !kp.UploadedAt.IsZero():
			st.freshLastResort = true
		case !kp.LastResort && soon && !kp.ExpiresAt.Before(now):
			st.expiring++
		}
		stocks[cs] = st
	}
	return stocks, nil
}

// pruneKeyPackages deletes the private halves whose KeyPackage expired
// more than KeyPackageGrace ago.
func (b *Backend) pruneKeyPackages(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-b.cfg.KeyPackageGrace)
	n := 0
	err := b.update(ctx, func(tx *store.Tx) error {
		kps, err := tx.KeyPackages()
		if err != nil {
			return err
		}
		for _, kp := range kps {
			clear(kp.Secrets)
			if !kp.ExpiresAt.IsZero() && kp.ExpiresAt.Before(cutoff) {
				if err := tx.DeleteKeyPackage(kp.Ref); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune key packages: %w", err)
	}
	if n > 0 {
		b.log.Info("expired key package secrets deleted", "count", n)
	}
	return nil
}

// PruneHistory deletes messages and events older than Config.Retention
// allows and reports how many of each went.
func (b *Backend) PruneHistory(ctx context.Context) (messages, events int, err error) {
	r := b.cfg.Retention
	if r.Messages <= 0 && r.Events <= 0 {
		return 0, 0, nil
	}
	now := b.cfg.Now()
	err = b.update(ctx, func(tx *store.Tx) (err error) {
		if r.Messages > 0 {
			if messages, err = tx.DeleteMessagesBefore(now.Add(-r.Messages)); err != nil {
				return err
			}
		}
		if r.Events > 0 {
			events, err = tx.DeleteEventsBefore(now.Add(-r.Events))
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("backend: prune history: %w", err)
	}
	if messages+events > 0 {
		b.log.Info("history pruned", "messages", messages, "events", events)
	}
	return messages, events, nil
}

// maintain prunes on the Config.KeyPackageCheck tick until ctx ends,
// connected or not.
func (b *Backend) maintain(ctx context.Context) {
	t := time.NewTicker(b.cfg.KeyPackageCheck)
	defer t.Stop()
	for {
		if _, _, err := b.PruneHistory(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("prune history", "err", err)
		}
		if err := b.pruneKeyPackages(ctx, b.cfg.Now()); err != nil && ctx.Err() == nil {
			b.log.Warn("prune key packages", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
