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
// createGroup, submitCommit, fanOut (one message, or fanOutBatch for several
// of a caller's in one transaction) and groupState (schemas/group) give a
// group's messages a total order, and the node follows each group's public
// state (groupview.go): the ratchet tree without secrets, the GroupContext
// and the transcript hashes, as internal/mls's PublicGroup. The creator
// claims a group id with its first GroupInfo (signature, tree hash, parent
// hashes and leaves checked). Handshake messages are PublicMessages: a
// commit is accepted only for the current epoch, signed by the submitting
// identity's leaf (or an external commit by which it resyncs its own leaf),
// with proposals valid on the public tree and a well-formed UpdatePath with
// valid parent hashes; the store keeps the resulting view in the
// transaction that fans the commit out. Proposals fanned out are checked
// and kept in the view for commits by reference. Application messages are
// PrivateMessages the node only routes (mlsheader.go reads their clear
// header). The roster is the tree's leaf signature keys (devices):
// recipients are never
// declared (a list is invalidArgument). A commit goes to every other
// member and to the members it removes, who receive their removal and then
// nothing; the Welcome to the members it adds. A commit for an earlier
// epoch gets a stale outcome naming the current epoch, in the reply rather
// than as an exception; a later epoch is futureEpoch; anything the view
// refuses is invalidCommit. Only members may submit, fan out or read
// groupState: anyone else, and anyone naming a group never created, gets
// unauthorized. Recipients see ordinary envelopes marked sequenced: the
// sender is the connection's identity, the payload the MLSMessage. Both
// calls are idempotent on the client message id.
//
// # Devices
//
// A person is a user key U with one or more device keys (internal/devid);
// the connection's identity is a device key, and queues, KeyPackages and
// limits are per device. publishDevices, fetchDevices and
// fetchUserKeyPackages (schemas/devices, devices.go) keep each user's
// signed device list: a listed device counts as registered, and a device
// dropped from its list is revoked for ever (queue and KeyPackages gone,
// connections closed, every later call refused with revoked, never listed
// again). An x509 KeyPackage is taken only from its own, listed device.
// Public views take a leaf only if devid.Rule accepts it and its device is
// not revoked; rosters are the leaves' signature keys. The link slots of
// link.go are the rendezvous through which a new device is linked.
//
// # Blobs
//
// createBlob, putBlobChunk, blobInfo and getBlobChunk (schemas/blob,
// blob.go) keep the ciphertext of attachments: a member uploads a blob for
// its group in chunks, in order; only the group's current members read it
// (anyone else, and anyone naming an unknown blob, gets unauthorized). The
// key never reaches the node. Blobs have quotas (per blob, per uploader,
// in all) and expire; their chunks are in the store or an object store
// (Config.BlobChunks). Chunk calls are paced by a bucket of their own
// instead of the request rate limit.
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
