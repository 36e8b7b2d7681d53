// Package backend is qpd's single owner of state. Every change to the
// daemon's state (identity, groups, history, events, outbox, node
// connection) goes through a Backend; the API layer only translates between
// gRPC and Backend calls.
//
// A Backend keeps its durable state in a store.Store and runs one loop (Run)
// that keeps a connection to the node: it dials with the identity key as TLS
// client certificate, pins the node's certificate (a given one, or the first
// one seen, remembered in the store), and on failure retries with
// exponential backoff. Changes of the connection state are recorded as
// events.
//
// Readers wait for changes with Changed: the returned channel is closed by
// the next committed write, so a reader that takes the channel before it
// reads the store never misses a change.
//
// # Node queues and KeyPackages
//
// While connected, workers run beside the connection:
//   - the KeyPackage keeper tops up this identity's KeyPackages at the node
//     (Config.KeyPackageTarget, plus a last-resort one) on connect and every
//     Config.KeyPackageCheck; each private half is committed to the store
//     before its KeyPackage is uploaded. MLSKeyPackages makes them with
//     internal/mls. FetchKey fetches a peer's and validates it;
//   - the receiver subscribes to the user's queue from the stored node
//     cursor; for each pushed envelope it calls the EnvelopeHandler and
//     advances the cursor in the same transaction, and acknowledges to the
//     node only after that commit (ErrRejectEnvelope: skipped, logged);
//   - the outbox sender enqueues pending application messages to each
//     recipient with the item's client message id (so the node stores a
//     repeat once) and marks the item sent after the node stored it; while
//     offline items wait, and they go out on reconnect.
//
// # Seams
//
// The MLS group state machine plugs in at these places:
//   - Config.Envelopes (EnvelopeHandler) applies what arrives. While it is
//     nil the daemon does not read its queue, so nothing is acknowledged
//     that was not applied.
//   - The group operations (CreateGroup, Invite, Join, Members, Send, Remove,
//     Leave, Update) check their arguments and return ErrUnimplemented.
//     Send will encrypt and, in one transaction, store the group state, the
//     history entry and the outbox item (store.Tx.AddOutbox); commits
//     (store.OutboxCommit) are left in the outbox for the group state
//     machine, which must learn the node's verdict before merging.
//   - Config.KeyPackages is a KeyPackageMaker; MLSKeyPackages.ExtensionTypes
//     advertises extra extensions (such as the group-name extension).
package backend
