@0xb3889f984bfe7146;
# NodeService: the bootstrap capability of a quicproquo node.

using Go = import "/go.capnp";
$Go.package("node");
$Go.import("github.com/quicproquo/quicproquo/schemas/node");

using Auth = import "/auth/auth.capnp";
using Delivery = import "/delivery/delivery.capnp";
using Group = import "/group/group.capnp";
using Blob = import "/blob/blob.capnp";
using Devices = import "/devices/devices.capnp";

interface NodeService extends(Auth.AuthService, Delivery.DeliveryService, Group.GroupService, Blob.BlobService, Devices.DeviceService) {
  # Everything a node serves, on one capability. The connection's identity
  # is the Ed25519 key of the client's TLS certificate; without one, only
  # ping is allowed.

  ping @0 () -> (serverTimeUnixNano :Int64, identityKey :Data);
  # Answers at once. identityKey is the identity the node bound this
  # connection to (empty without a client certificate).

  registration @1 () -> (policy :Text, registered :Bool, challenge :Data, difficulty :UInt8);
  # How this connection's identity registers: policy is "open" (a proof
  # of work: SHA-256("qpq-register-v1" || challenge || identityKey || nonce)
  # starting with difficulty zero bits), "token" (an operator's token) or
  # "closed". challenge is fresh per connection and good only on it.

  register @2 (token :Text, nonce :Data) -> ();
  # Registers the connection's identity with a token (any policy but
  # closed) or a proof of work (open). Registering again is not an error.
  # Only registered identities upload KeyPackages, enqueue, send to groups
  # or receive direct messages.
}

# An envelope with an empty sender comes from the node itself; its
# payload names the notice: "qpq-node:keyPackagesLow" (the identity's
# directory is running low; upload more now).

enum ErrorCode {
  # Why a call failed. A failed call's exception reason starts with
  # "qpq:" followed by the code's name, a colon and a description, for
  # example "qpq:unauthorized: connection is not ...".

  unknown @0;
  unauthorized @1;     # the connection may not act for that identity
  noKeyPackage @2;     # the identity has no KeyPackage left
  tooLarge @3;         # a payload or package exceeds the node's size limit
  limit @4;            # queue depth or KeyPackages per identity exhausted
  rateLimited @5;      # too many requests from this identity; retry later
  invalidArgument @6;  # malformed key, package or argument
  staleEpoch @7;       # a commit for an epoch that already has one
  internal @8;         # the node failed; the request may be retried
  notRegistered @9;    # the connection's identity has not registered
  unknownRecipient @10; # no registered identity has that key
  quota @11;           # strangers' share of the recipient's queue is used up
  diskFull @12;        # the node's disk budget is used up
  badToken @13;        # a registration token unknown, expired or used up, or a wrong proof of work
  invalidCommit @14;   # a handshake message the group's public state refuses
  futureEpoch @15;     # a commit for an epoch the group has not reached
  groupExists @16;     # createGroup for a group id claimed before
  blobIncomplete @17;  # a blob read before its last chunk is stored
  revoked @18;         # the connection's device was removed from its user's device list
  cursorAhead @19;     # a receive, subscribe or ack after a number the queue never handed out (the node's database is older than the client's cursor)
}
