@0x830f6c67012fd401;
# Groups: ordered delivery of MLS handshake and application messages.

using Go = import "/go.capnp";
$Go.package("group");
$Go.import("github.com/quicproquo/quicproquo/schemas/group");

interface GroupService {
  # The node follows each group's public state (RFC 9420's view of a
  # delivery service, like OpenMLS's PublicGroup): the ratchet tree without
  # secrets, the GroupContext and the transcript hashes. Handshake messages
  # (commits, proposals) are PublicMessages it verifies; application
  # messages are PrivateMessages it only routes. The roster is the set of
  # the tree's leaf identities: never declared by a sender. Messages reach
  # recipients as ordinary envelopes in their queues (sender = the
  # submitting connection's identity, clientMsgId as given, payload = the
  # MLSMessage bytes, sequenced = true), so receive, subscribe and ack
  # deliver them. Every call needs an authenticated connection, and only
  # members of a group (identities in its roster) may submit, fan out or
  # ask about it: anyone else, and anyone naming a group never created,
  # gets unauthorized.

  createGroup @3 (groupInfo :Data) -> ();
  # Claims a group id: groupInfo is an MLSMessage carrying the group's
  # GroupInfo with the ratchet_tree extension, signed by a leaf whose
  # credential identity is the caller's. The node verifies the signature,
  # the tree (tree hash, parent hashes, leaf signatures) and keeps the
  # public view. A group id claimed before is groupExists.

  submitCommit @0 (clientMsgId :Data, mlsMessage :Data, recipients :List(Data),
                   welcome :Data, welcomeRecipients :List(Data))
      -> (outcome :CommitOutcome);
  # mlsMessage is an MLSMessage carrying a PublicMessage commit, signed by
  # the caller's leaf (or an external commit by which the caller resyncs
  # its own leaf). The node accepts exactly one commit per (group, epoch):
  # a commit for the current epoch whose signature verifies under the
  # committer's leaf key, whose proposals are valid on the public tree and
  # whose UpdatePath is well formed with valid parent hashes advances the
  # group, and in one transaction goes to every other member and to every
  # member it removes, and welcome (an MLSMessage carrying a Welcome; empty
  # when nobody joins) to every member it adds. A commit for an earlier
  # epoch has outcome stale, naming the current epoch; one for a later
  # epoch fails with futureEpoch; one the view refuses with invalidCommit.
  # recipients and welcomeRecipients must be empty (the node derives them
  # from the tree; a list is invalidArgument). With a non-empty clientMsgId
  # the call is idempotent on (group, sender, clientMsgId): a repeat gets
  # the original answer with duplicate = true and stores nothing.

  fanOut @1 (clientMsgId :Data, mlsMessage :Data, recipients :List(Data))
      -> (groupSeq :UInt64, duplicate :Bool);
  # mlsMessage is an MLSMessage carrying application data (a
  # PrivateMessage) or a proposal (a PublicMessage the view checks and
  # keeps for commits by reference). Appends it to every other member's
  # queue in one transaction and returns its per-group sequence number.
  # recipients must be empty. Idempotent on clientMsgId like submitCommit.

  fanOutBatch @4 (items :List(FanOutItem)) -> (results :List(FanOutItemResult), refusal :Text);
  # fanOut for each of items, in order, stored in one transaction: each
  # item is checked and stored exactly as a fanOut call of its own would
  # be, and a refused one stores nothing. The first refused item ends the
  # batch: results has one entry per item stored (or found a duplicate)
  # before it, and refusal is its reason, in the form of a refused call's
  # exception reason ("qpq:<code>: <message>"); the items after it are not
  # tried. With nothing refused, refusal is empty and results has one
  # entry per item. So a group's order is exactly that of one fanOut call
  # after another. The call as a whole is refused (an exception, nothing
  # stored) when it is not authenticated, past the rate limit (a batch
  # counts as one request), with more than 64 items (limit), with items
  # of more than twice the message size limit in all (tooLarge), or when
  # the node's disk budget has no room for them (diskFull).

  groupState @2 (groupId :Data) -> (committed :Bool, epoch :UInt64, lastSeq :UInt64, members :UInt32);
  # What the node knows of a group, for its members: committed is always
  # true, epoch the epoch the next commit must name, lastSeq the last
  # per-group sequence number, members the size of the roster.
}
struct FanOutItem {
  clientMsgId @0 :Data;
  mlsMessage @1 :Data;
  # As in fanOut.
}

struct FanOutItemResult {
  groupSeq @0 :UInt64;
  duplicate @1 :Bool;
  # As fanOut answers.
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
