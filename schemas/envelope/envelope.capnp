@0xd5870bdd5c926678;
# Envelope: one message as a recipient's queue holds it.

using Go = import "/go.capnp";
$Go.package("envelope");
$Go.import("github.com/quicproquo/quicproquo/schemas/envelope");

struct Envelope {
  # A stored message. The node never reads the payload: it is an opaque
  # (MLS) message addressed to the queue's owner.

  seq @0 :UInt64;
  # Sequence number in the recipient's queue: strictly increasing from 1,
  # never reused. Receivers keep the last one they processed as their cursor.

  sender @1 :Data;
  # 32-byte Ed25519 identity of the connection that enqueued the message.

  clientMsgId @2 :Data;
  # The sender's id for idempotent enqueue (empty: not deduplicated).

  payload @3 :Data;
  # Opaque bytes.

  enqueuedAtUnixNano @4 :Int64;
  # When the node stored the message, in nanoseconds since the Unix epoch.

  sequenced @5 :Bool;
  # The message came in its group's order: a commit the node accepted (or
  # its Welcome) or a group message it fanned out. False for a direct
  # enqueue, which members must never apply as a handshake message.

  groupSeq @6 :UInt64;
  # The message's number in its group's order, the node's per-group
  # sequence number (the same for every member): set on every sequenced
  # message (a commit and its Welcome share the commit's number), 0 for a
  # direct enqueue and for messages stored before the node knew it.
}
