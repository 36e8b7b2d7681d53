package store

import (
	"context"
	"fmt"
)

// Deleted secrets leave the disk, not only the tables. A KeyPackage's
// private half that was used, a Welcome that was processed, and every
// epoch's keys once the group moved on must not be readable from the state
// folder afterwards (forward secrecy at rest). SQLite keeps them in two
// places unless told otherwise:
//
//   - the database file: a deleted row, or the old version of an updated
//     one, stays in its page's free space or in a free page. The
//     connection runs with secure_delete on, so SQLite overwrites that
//     content with zeros;
//   - the write-ahead log (qpd.db-wal): every committed page is appended
//     there before it is copied into the file, so the log holds the old
//     versions of pages too, and it is reused rather than shrunk. After a
//     transaction that deleted secrets (the Tx methods set scrub) the store
//     checkpoints the log into the file and truncates it to zero bytes
//     (wal_checkpoint(TRUNCATE)); Close does the same.
//
// A group's state changes with every message (its ratchets move), and
// checkpointing after each would cost an fsync per message; the store
// scrubs when the epoch changes, and message keys of the current epoch
// leave the log at the next epoch change or Close. What remains out of
// reach of any database setting: copies the file system or the disk keeps
// (journaling file systems, SSD wear levelling, backups and snapshots).
// Encrypting the file closes that gap only with a key kept off the disk;
// see the package documentation on at-rest encryption.

// checkpoint folds the log into the file and truncates it.
func (s *Store) checkpoint(ctx context.Context) error {
	var busy, logPages, done int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("store: checkpoint: the log is in use (%d of %d pages copied)", done, logPages)
	}
	return nil
}

// ScrubError is the last checkpoint after a secret's deletion that failed
// (nil when none did); the next one retries it.
func (s *Store) ScrubError() error {
	if p := s.scrubErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Scrub checkpoints and truncates the log now.
func (s *Store) Scrub(ctx context.Context) error {
	err := s.checkpoint(ctx)
	if err == nil {
		s.scrubErr.Store(nil)
	}
	return err
}
