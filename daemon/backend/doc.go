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
// # Seams
//
// MLS plugs in at two places, both nil until internal/mls provides them:
//   - Config.KeyPackages (KeyPackageMaker) makes KeyPackages; Register and the
//     connection loop store each private half before uploading it.
//   - The group operations (CreateGroup, Invite, Join, Members, Send, Remove,
//     Leave, Update, FetchKey) return ErrUnimplemented until the MLS group
//     state machine is wired in; receiving from the node queue is not started
//     before then either, so nothing is acknowledged that was not applied.
package backend
