// Package postgres is the PostgreSQL backend of store.Store: several
// stateless qpnode processes, on one machine or many, serve the same users
// from one database. It uses github.com/jackc/pgx/v5 and needs PostgreSQL
// 11 or newer (the tests run against the version Debian ships).
//
// # Opening
//
//	s, err := postgres.Open(ctx, "host=db.internal user=qpnode dbname=qpnode", store.Limits{}, logger)
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//
// The connection string is anything pgx accepts: keyword/value
// ("host=/run/postgresql dbname=qpnode") or a URL
// ("postgres://qpnode@db.internal/qpnode?sslmode=verify-full"), with the
// usual PG* environment variables and ~/.pgpass filling in what it leaves
// out. pgxpool's settings ride along in it: pool_max_conns (default
// DefaultMaxConns, 16: concurrent commits share the server's log flushes)
// bounds the connections one node holds, plus one per running
// Notifications. To keep the tables in a
// schema of their own, create it and name it in search_path
// ("... search_path=qpnode"). The role needs to create tables on the first
// Open (and on the first Open of a version with new migrations), then only
// to read and write them.
//
// Open brings the schema up to date and prunes old deduplication entries.
// Zero limits take the defaults: 100 KeyPackages per identity, 10000
// messages per queue. Every node sharing a database should use the same
// limits; each enforces its own on the writes it makes.
//
// # Schema and migrations
//
// The schema version is the one row of table schema_version. The
// migrations list is append-only; Open applies every pending step in one
// transaction, under an advisory lock, so nodes starting together migrate
// once between them and never see half a schema. It refuses
// (ErrSchemaTooNew) a database that a newer program has migrated further
// than this one knows: roll nodes forward, never back.
//
// The tables follow the SQLite backend's: key_packages; queues, one row
// per recipient with its last sequence number and depth, so that sequence
// numbers are never reused even when a queue is empty; messages, whose
// payload is inline or, for a fan-out to several recipients, one shared
// row of payloads with a reference count that a statement-level trigger
// decrements when messages are acknowledged or drained, freeing the
// payload with its last reference; enqueue_dedup; groups, with the epoch
// the next commit must name (NULL until the first commit) and the last
// per-group sequence number; group_members, the roster of the last
// accepted commit; and group_dedup.
//
// # Durability
//
// Each call is one transaction, and returns only after its COMMIT has
// returned (a direct Enqueue and an Ack are each one statement that is
// its own transaction, committed before the server answers it): the
// store sets synchronous_commit=on on its connections, whatever the
// server's default, so a commit is on disk (and on synchronous standbys,
// if the server has them) before the node answers
// its client. A call whose context is cancelled before COMMIT is rolled
// back; once COMMIT (or a statement that commits itself) is sent the
// store waits for its answer, so a call never reports failure for work
// that was committed. If the connection
// is lost during COMMIT the outcome is unknown and the call fails; the
// client's retry with the same client message id is then answered as a
// duplicate if the first attempt did commit.
//
// # Concurrency
//
// Transactions run at READ COMMITTED and take row locks on what they
// change, so that callers on any number of nodes get the answers one
// serial order would give:
//
//   - TakeKeyPackage deletes the oldest consumable package chosen with
//     FOR UPDATE SKIP LOCKED: concurrent takers never get the same package
//     and never wait for each other; a taker that finds every remaining
//     package taken by others in flight gets the last-resort package (or
//     store.ErrNoKeyPackage). PutKeyPackage holds a transaction-level
//     advisory lock per identity, so the per-identity limit holds.
//   - Every write to a queue first locks its row in queues (an upsert that
//     also advances last_seq and depth), and holds the lock until COMMIT.
//     Writes to one queue therefore commit in the order of their sequence
//     numbers, and Receive, a single statement seeing only committed rows,
//     never sees a gap that a slower writer fills later: a push cursor
//     that moved past a sequence number never misses it. Of concurrent
//     retries of one message (one client message id) only one can insert
//     the remembered id; the others fail on its unique key once it
//     commits and run again, finding it, so the message is stored once.
//   - A fan-out locks all its recipients' queues in one statement, in the
//     order of their keys, so that concurrent fan-outs to overlapping
//     recipients never deadlock; acknowledgements lock their queue, then
//     the shared payloads they release in id order.
//   - SubmitCommit and FanOut first lock the group's row (creating it if
//     the group is new). The deduplication lookup, the roster check, the
//     epoch check and the epoch advance all happen under that lock, so of
//     several concurrent commits for one epoch exactly one wins, and the
//     others, once the winner commits, see the new epoch and get a
//     *store.StaleEpochError naming it.
//
// Should PostgreSQL still abort a transaction as a deadlock or
// serialization failure, the store runs it again from the start, up to
// five times.
//
// # Cross-node push
//
// A node wakes the push subscriptions of its own clients when it stores a
// message, but a message may be stored by any node. So the writes that
// store messages run pg_notify on the channel qpnode_messages, naming the
// recipients (hex keys, comma-separated, up to 100 per notification);
// PostgreSQL delivers notifications only when, and only if, the
// transaction that sent them commits. The commit, Welcome and application
// message fan-outs notify inside their own transactions, and so does a
// direct Enqueue with no other in flight on its node. Concurrent ones do
// not: PostgreSQL serializes the commits of notifying transactions on a
// database-wide lock held through the commit's log flush, which allowed
// one flush per enqueue. Their recipients are announced after their
// commits by a goroutine of the store that names the recipients of the
// enqueues committed meanwhile together, in a transaction of its own that
// does not wait for a flush; a crash between the two loses the wake-up.
// Notifications (store.Notifier) LISTENs on that channel on a connection
// of its own and hands each recipient to the node, which wakes that recipient's subscriptions; the server
// (node/server) runs it for as long as it serves when its store
// implements store.Notifier. If the connection drops, Notifications
// reconnects with a growing delay and then calls its callback with nil,
// which wakes every subscription, since notifications sent meanwhile were
// lost. Every SweepInterval (a minute) it also calls it for each recipient
// of a message stored in the last few intervals, which bounds how long a
// message waits whose node died before announcing it. A
// notification is only a wake-up: the subscription reads the queue
// from its cursor, so a duplicate or extra wake-up costs one query and a
// missed one at most delays a message until the next.
//
// # Deduplication window
//
// Client message ids are remembered in enqueue_dedup and group_dedup for
// DedupRetention (7 days) after their first use, also after the message is
// acknowledged; every node prunes older entries at Open and then every
// PruneInterval. A retry older than that is stored as a new message.
//
// # Tests
//
// The tests run the storetest conformance suite (store.Store's contract,
// including 50 concurrent KeyPackage takers and 10 concurrent committers
// per epoch), the persistence suite, two stores sharing one database, the
// notifications with a dropped connection, and the migrations, all
// against a real PostgreSQL server that internal/pgtest starts for the
// test binary.
package postgres
