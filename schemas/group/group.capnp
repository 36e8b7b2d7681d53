@0x830f6c67012fd401;
# Groups: ordered delivery of MLS handshake and application messages.

using Go = import "/go.capnp";
$Go.package("group");
$Go.import("github.com/quicproquo/quicproquo/schemas/group");

interface GroupService {
  # The node reads only the clear header of an MLSMessage (RFC 9420 §6):
  # group_id, epoch and content type. Messages reach recipients as ordinary
  # envelopes in their queues (sender = the submitting connection's identity,
  # clientMsgId as given, payload = the MLSMessage bytes), so receive,
  # subscribe and ack deliver them. Every call needs an authenticated
  # connection. Once a group has an accepted commit, only its roster (the
  # submitter, recipients and welcome recipients of the last accepted commit)
  # may submit commits or fan out to it.

  submitCommit @0 (clientMsgId :Data, mlsMessage :Data, recipients :List(Data),
                   welcome :Data, welcomeRecipients :List(Data))
      -> (outcome :CommitOutcome);
  # mlsMessage is an MLSMessage (PublicMessage or PrivateMessage) whose content
  # type is commit. The node accepts exactly one commit per (group, epoch):
  # if its epoch is the group's current one (or the group has no
  # commit yet) it advances the group, and in one transaction appends it
  # to every recipient's queue and welcome (an MLSMessage carrying a Welcome)
  # to every welcome recipient's queue. Otherwise the outcome is stale,
  # naming the current epoch. With a non-empty clientMsgId the call is
  # idempotent on (group, sender, clientMsgId): a repeat gets the original
  # answer with duplicate = true and stores nothing.

  fanOut @1 (clientMsgId :Data, mlsMessage :Data, recipients :List(Data))
      -> (groupSeq :UInt64, duplicate :Bool);
  # mlsMessage is an MLSMessage whose content type is application or proposal.
  # Appends it to every recipient's queue in one transaction and returns its
  # per-group sequence number. Idempotent on clientMsgId like submitCommit.

  groupState @2 (groupId :Data) -> (committed :Bool, epoch :UInt64, lastSeq :UInt64);
  # What the node knows of a group: whether it ever accepted a commit, the
  # epoch the next commit must name, and the last per-group sequence number.
  # A group never seen is all zero.
}

struct CommitOutcome {
  union {
    accepted :group {
      epoch @0 :UInt64;
      # The group's epoch after this commit (the commit's epoch + 1).

      groupSeq @1 :UInt64;
      # The commit's per-group sequence number.

      duplicate @2 :Bool;
      # A resubmission of an accepted commit: nothing was stored this time.
    }
    stale :group {
      epoch @3 :UInt64;
      # The epoch the refused commit named.

      current @4 :UInt64;
      # The group's current epoch: the only one a commit may name now.
    }
  }
}
