// Package server is the node's side of the protocol: a QUIC listener that
// serves the Cap'n Proto NodeService (schemas/node) on the first
// bidirectional stream of every connection, backed by a store.Store.
//
// # Connections and identity
//
// The TLS handshake (internal/transport) binds each connection to the Ed25519
// key of the client's self-signed certificate, or to nobody. An anonymous
// connection may only ping. An authenticated connection may enqueue to any
// queue (the node records it as the sender) and fetch anyone's KeyPackages,
// but may read, acknowledge, subscribe to, upload KeyPackages for, or count
// the KeyPackages of only its own identity.
//
// # Errors
//
// A refused call fails with a Cap'n Proto exception whose reason is
// "qpq:<code>: <description>", code being a schemas/node ErrorCode name such
// as unauthorized or tooLarge. node/client maps these to sentinel errors.
//
// # Push
//
// subscribe keeps a goroutine per subscription that sends the stored
// messages after the client's cursor to its MessageSink, one batch per
// deliver call, waiting for each to return; an in-process notifier wakes it
// when enqueue stores a message for that recipient.
//
// # Limits
//
// Payloads and KeyPackages are bounded in size (Config.MaxPayloadSize,
// Config.MaxKeyPackageSize), queues and KeyPackage counts by the store's
// limits, and requests by a token bucket per identity (per connection for
// anonymous ones).
package server
