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
// # Groups
//
// submitCommit, fanOut and groupState (schemas/group) give a group's
// messages a total order. The node reads only the clear header of an
// MLSMessage (RFC 9420 §6: version, wire format, group_id, epoch, the
// sender type of a PublicMessage and the content type; see mlsheader.go)
// and never imports the MLS implementation. submitCommit takes commit
// content only; the store accepts exactly one commit per (group, epoch) and,
// in the same transaction, appends the commit to every recipient's queue and
// the Welcome (checked only to be an MLSMessage of wire format mls_welcome)
// to every welcome recipient's. A commit for another epoch gets a stale
// outcome naming the current epoch, in the reply rather than as an exception.
// fanOut takes application or proposal content (application content only in
// a PrivateMessage). Recipients see ordinary envelopes: the sender is the
// connection's identity, the payload the MLSMessage. Both calls are
// idempotent on the client message id.
//
// Once a group has an accepted commit, only its roster (the sender,
// recipients and welcome recipients of that commit) may submit or fan out;
// others get unauthorized. The node takes the roster from what the
// committer declares: it cannot check it against the MLS group. For the same
// reason an external commit (sender type new_member_commit) from an identity
// outside the roster is refused like any other: a joiner is added by a
// member's commit and its Welcome.
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
// Payloads, group messages, Welcomes and KeyPackages are bounded in size
// (Config.MaxPayloadSize, Config.MaxKeyPackageSize), the recipients of one
// group call by Config.MaxRecipients (limit), queues and KeyPackage counts by the store's
// limits, and requests by a token bucket per identity (per connection for
// anonymous ones).
//
// # Registration, quotas and expiry
//
// Identities are free, so the node also bounds what they can do together.
// Config.Registration decides how an identity registers (registration.go:
// a proof of work bound to the connection's challenge, or an operator's
// token); only registered identities upload KeyPackages, enqueue or send to
// groups, and only they receive direct messages. The store keeps strangers'
// share of each queue and the room reserved for group traffic; the server
// keeps the disk budget (quota.go, a tenth reserved for group traffic),
// deletes messages older than Config.MessageTTL, and bounds KeyPackage
// fetches per requester and per target, pushing a low-water notice to an
// owner whose directory runs low (kpfetch.go).
package server
