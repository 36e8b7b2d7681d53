@0xeedce9c41ba38fbf;
# Delivery: per-recipient queues of opaque messages.

using Go = import "/go.capnp";
$Go.package("delivery");
$Go.import("github.com/quicproquo/quicproquo/schemas/delivery");

using Envelope = import "/envelope/envelope.capnp".Envelope;

interface DeliveryService {
  # Queues addressed by 32-byte Ed25519 identity keys. Any authenticated
  # connection may enqueue (the node records it as the sender); only the
  # queue's owner may read, acknowledge or subscribe.

  enqueue @0 (recipientKey :Data, payload :Data, clientMsgId :Data)
      -> (seq :UInt64, duplicate :Bool);
  # Appends payload to the recipient's queue. The reply comes after the
  # message is durable. With a non-empty clientMsgId the call is idempotent on
  # (recipient, sender, clientMsgId): a repeat returns the original seq with
  # duplicate = true.

  fetch @1 (recipientKey :Data) -> (payloads :List(Data));
  # Returns every queued payload in order and deletes them (drain).

  receive @2 (recipientKey :Data, afterSeq :UInt64, limit :UInt32)
      -> (envelopes :List(Envelope));
  # Returns up to limit messages with seq > afterSeq, in order, without
  # deleting them. limit 0 means the node's default.

  ack @3 (recipientKey :Data, upToSeq :UInt64) -> (deleted :UInt32);
  # Deletes the messages with seq <= upToSeq.

  subscribe @4 (recipientKey :Data, afterSeq :UInt64, sink :MessageSink)
      -> (subscription :Subscription);
  # Pushes the stored messages after afterSeq to sink, then each new one while
  # the subscription is held. Each sink.deliver call returns before the next
  # is made (flow control). Releasing or cancelling the subscription stops
  # the pushes; messages are still deleted only by ack.
}

interface MessageSink {
  # Implemented by the client; the node calls it.

  deliver @0 (envelopes :List(Envelope)) -> ();
  # A batch of messages in sequence order.

  ended @1 (reason :Text) -> ();
  # The node stopped pushing for a reason of its own (not a cancel, a failed
  # deliver or the end of the connection); no deliver call follows. reason
  # starts with "qpq:<ErrorCode name>:". The subscriber may subscribe again
  # from its cursor.
}

interface Subscription {
  # Held by the client while it wants pushes.

  cancel @0 () -> ();
  # Stops the pushes now.
}
