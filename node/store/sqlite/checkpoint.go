package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Checkpoints copy the WAL into the database file. SQLite's own automatic
// checkpoint runs inside the commit that passes its threshold, so every
// caller of that batch, and every call queued behind it, waits while
// thousands of pages are copied and the database file is synced: the
// longest stalls of a busy node. So the checkpoints run on a connection of
// their own (checkpointLoop), at most every checkpointGap while there are
// commits, in PASSIVE mode: they copy what was committed before they began
// while the writer goes on committing. Such a checkpoint cannot end the WAL,
// since what was committed meanwhile is not copied yet; and the WAL starts
// over from its beginning only once all of it is copied. So after each one
// the writer copies the rest itself, between two batches (finishCheckpoint):
// a few milliseconds of commits at most, because a background checkpoint
// that ran long is run again first. The writer's own automatic checkpoint
// stays as a backstop at backstopCheckpointPages, should the background
// ones fail or readers hold them back; a crash replays at most that much
// WAL.
var (
	checkpointGap           = 250 * time.Millisecond
	backstopCheckpointPages = 4 * 8192 // 128 MiB of 4 KiB pages
)

// A background checkpoint that took longer than longCheckpoint runs again
// (up to checkpointPasses in all) before the writer copies the rest.
const (
	longCheckpoint   = 20 * time.Millisecond
	checkpointPasses = 3
)

// checkpointTimeout bounds one checkpoint.
const checkpointTimeout = time.Minute

// kickCheckpoint tells the checkpointer a commit happened; it never blocks.
func (s *Store) kickCheckpoint() {
	select {
	case s.ckptKick <- struct{}{}:
	default:
	}
}

// checkpointLoop runs the background checkpoints on c until Close.
func (s *Store) checkpointLoop(c *sql.DB) {
	defer close(s.ckptDone)
	defer c.Close()
	gap := time.NewTimer(checkpointGap)
	defer gap.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-s.ckptKick:
		}
		// Commits keep coming: wait out the gap, then copy them all.
		select {
		case <-s.stopCkpt:
			return
		case <-gap.C:
		}
		// A kick during the gap is covered by this checkpoint.
		select {
		case <-s.ckptKick:
		default:
		}
		if s.checkpointPasses(c) {
			s.finishCkpt.Store(true)
		}
		s.ckpts.Add(1)
		gap.Reset(checkpointGap)
	}
}

// checkpointPasses runs background checkpoints on c, again while they take
// long, and reports whether the last one copied all it saw.
func (s *Store) checkpointPasses(c *sql.DB) bool {
	for pass := 1; ; pass++ {
		ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
		start := time.Now()
		busy, err := checkpoint(ctx, c)
		cancel()
		if err != nil {
			s.log.Warn("background checkpoint failed", "err", err)
			return false
		}
		if busy {
			return false // readers held it back: the next one goes on
		}
		if time.Since(start) < longCheckpoint || pass == checkpointPasses {
			return true
		}
	}
}

// finishCheckpoint copies, on the writer's connection and between two
// batches, what a background checkpoint left of the WAL, so that the next
// transaction starts the WAL over.
func (s *Store) finishCheckpoint() {
	if !s.finishCkpt.Swap(false) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
	defer cancel()
	if _, err := checkpoint(ctx, s.w); err != nil {
		s.log.Warn("finishing a checkpoint failed", "err", err)
	}
}

// checkpoint runs a PASSIVE checkpoint on db; busy says that readers or a
// writer kept it from copying all of the WAL it saw.
func checkpoint(ctx context.Context, db *sql.DB) (busy bool, err error) {
	var b, frames, copied int64
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&b, &frames, &copied); err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	return b != 0, nil
}
