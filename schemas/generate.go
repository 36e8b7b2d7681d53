// Package schemas holds the Cap'n Proto schemas of the node protocol and the
// Go packages generated from them, one per schema file:
//
//   - node: NodeService, the bootstrap capability of a node, and ErrorCode.
//   - auth: AuthService, the KeyPackage directory.
//   - delivery: DeliveryService, the queues, with MessageSink and Subscription
//     for server push.
//   - group: GroupService, one commit per (group, epoch) and fan-out of
//     group messages, reading only the clear MLSMessage header.
//   - blob: BlobService, chunked upload and members-only download of the
//     ciphertext of attachments.
//   - envelope: Envelope, one queued message.
//
// A failed call carries an exception whose reason starts with
// "qpq:<ErrorCode name>:"; node/client turns those into sentinel errors.
//
// Regenerate with `go generate ./schemas/...` (needs the capnp compiler).
package schemas

//go:generate sh gen.sh
