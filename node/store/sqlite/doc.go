// Package sqlite is the embedded SQLite backend of store.Store, the node's
// default store. It uses the pure-Go modernc.org/sqlite driver, so the node
// stays a single static binary.
//
// # Opening
//
//	s, err := sqlite.Open(ctx, "/var/lib/qpnode/node.db", store.Limits{}, logger)
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//
// Open creates a missing folder with mode 0700 and a missing database file
// with mode 0600 (an existing file readable by others is restricted to 0600,
// with a warning), then brings the schema up to date. Zero limits take the
// defaults: 100 KeyPackages per identity, 10000 messages per queue.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a method returns only
// after its transaction is on disk, so the node may acknowledge a client as
// soon as the call returns. Each method's work is atomic; a failed call
// leaves nothing behind. TestCrashDurability kills a writer process with
// SIGKILL mid-stream and checks that every acknowledged enqueue survives, in
// order. Checkpoints, which copy the WAL into the database file, run on a
// connection of their own while the writer goes on committing, so that no
// commit waits for one (checkpoint.go).
//
// # Concurrency
//
// All writes go through one connection and begin with BEGIN IMMEDIATE, so in
// one process they are serialised without lock upgrades. They are also
// group-committed: one writer goroutine runs the write calls waiting at that
// moment (up to 256) in one transaction, each in its own savepoint, and
// commits once, so one fsync answers many callers (1000 members acking the
// same commit, say); a call that fails is rolled back to its savepoint
// alone, and every call returns only after the commit holding it. A direct
// enqueue needs no savepoint: it refuses (full queue, strangers' quota)
// before it writes, forgetting the client message id it claimed; should one
// of its statements fail, the writer runs the batch again with savepoints. Several
// processes sharing a file (each waiting up to busy_timeout for the lock)
// stay correct too. Reads (Receive, CountKeyPackages) use a small pool of
// query_only connections and do not wait for writers: WAL gives each read a
// consistent snapshot. TakeKeyPackage deletes and returns a package in one
// statement (DELETE ... RETURNING), so concurrent takers never share one.
//
// # Schema and migrations
//
// The schema version is kept in PRAGMA user_version. The migrations list is
// append-only; Open applies every pending step in one transaction, and
// refuses (ErrSchemaTooNew) a database that a newer program has migrated
// further than this one knows.
//
// Tables: key_packages (with a partial unique index allowing one last-resort
// package per identity); queues, one row per recipient holding the last
// sequence number handed out and the current depth, so sequence numbers are
// never reused even when a queue is empty, and a small integer id, found
// from the recipient by a unique index (a fan-out leaves the rows behind:
// the entries numbered above a row's last number count in, see
// queuecache.go); entries (one per queue and message,
// keyed by queue id and sequence number) and bodies (one per message);
// enqueue_dedup; groups,
// one row per group with its current epoch (NULL until the first commit) and
// last per-group sequence number, and whether its roster is known;
// group_members, the roster of each group's last accepted commit;
// group_dedup. A group committed before rosters were kept
// (schema version 3) has no known roster until its next commit.
//
// # Groups
//
// SubmitCommit and FanOut follow the rules documented in package store: one
// commit per (group, epoch), the first commit of a group accepted at any
// epoch, all recipients in one transaction. The epoch check and the epoch
// advance happen inside the same IMMEDIATE transaction, so of several
// concurrent commits for one epoch exactly one wins and the others see the
// new epoch. The roster check reads group_members in that same
// transaction, and the accepted commit replaces the roster there too. A
// message body is stored once, in bodies, with a reference count; each
// recipient holds a small entry keyed by (queue id, seq) that points at
// it, and a trigger frees the body when the last of those entries is
// acknowledged, drained or expired. The recipients of a fan-out are handed to SQLite as one JSON
// array, so a fan-out is a fixed number of statements whatever its size;
// their numbers and depths come from the writer's memory of the queues, so
// a fan-out writes one entry per recipient and no queue row.
//
// # Deduplication window
//
// Enqueue with a non-empty client message id records (recipient, sender, id)
// -> seq in enqueue_dedup, in the same transaction as the message. The entry
// outlives the message: a client that retries after its message was already
// delivered and acknowledged still gets duplicate=true and the original
// sequence number. Entries are pruned by age only, DedupRetention (7 days)
// after the enqueue, at Open and then every PruneInterval. A retry older than
// that is stored as a new message.
//
// # Validation
//
// Identity keys and recipients must be exactly 32 bytes, a sender empty or 32
// bytes (exactly 32 for group operations), a client message id at most
// store.MaxClientMsgIDSize bytes, a group id 1 to store.MaxGroupIDSize bytes, a
// recipient list free of repeats, and a KeyPackage, commit or group message
// non-empty; anything else is store.ErrInvalid. Limits are
// store.ErrLimit, and every call after Close is store.ErrClosed. All errors
// carry context and wrap these sentinels.
package sqlite
