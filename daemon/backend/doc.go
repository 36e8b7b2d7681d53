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
// # Node queues and KeyPackages
//
// While connected, workers run beside the connection:
//   - the KeyPackage keeper tops up this identity's KeyPackages at the node
//     (Config.KeyPackageTarget, plus a last-resort one) on connect and every
//     Config.KeyPackageCheck, replacing those about to expire
//     (lifecycle.go); each private half is committed to the store before
//     its KeyPackage is uploaded. MLSKeyPackages makes them with
//     internal/mls. FetchKey fetches a peer's and validates it;
//   - the receiver subscribes to the user's queue from the stored node
//     cursor; for each pushed envelope it calls the EnvelopeHandler and
//     advances the cursor in the same transaction, and acknowledges to the
//     node only after that commit (ErrRejectEnvelope: skipped, logged);
//   - the outbox sender enqueues pending application messages to each
//     recipient with the item's client message id (so the node stores a
//     repeat once) and marks the item sent after the node stored it; while
//     offline items wait, and they go out on reconnect.
//
// # Groups
//
// With Config.Groups the Backend keeps MLS groups (internal/mls), one
// serialized state per group in the store, always written in the same
// transaction as what changed it (message, event, outbox item, node
// cursor). One mutex (gmu) orders every change of group state and is taken
// before any transaction.
//
//   - CreateGroup: a 16-byte random group id, claimed at the node with the
//     group's first GroupInfo (now if connected, else before the first
//     commit). Proposals and commits are PublicMessages the node checks.
//     The name travels in the private-use extension ExtensionGroupName of
//     the GroupInfo inside each Welcome (encrypted to the joiners), never in
//     the GroupContext the node reads.
//
//   - Receive: Welcomes and group messages apply only when the envelope
//     came in the group's order (Sequenced), never by direct enqueue. A
//     commit the node accepted (signed, valid on the public tree) whose
//     secrets do not decrypt or confirm is rejected with an event naming
//     its signer: the group cannot pass that epoch, and recover.go moves
//     every honest member, without any command, to a successor group
//     without that member (the lowest other leaf creates it; the others
//     join only that leader's Welcome with exactly the expected roster;
//     the name, history and waiting messages move there).
//
//   - Send: encrypt (the sender ratchet moves), store the history entry and
//     the outbox item in one transaction; the outbox sender hands the item
//     to the node's FanOut for all other members at once (one order for
//     all recipients); offline it waits. The number the node answers with
//     (its per-group sequence) is stored with the history entry, as every
//     receiver stores the GroupSeq of its envelope: the number every member
//     shows for the message.
//
//   - People: every call that takes a peer reads it with one resolver
//     (peers.go): a whole key, a contact's key prefix of 8 or more hex
//     digits, or a contact's exact name; names that read as keys are
//     refused, so the two never compete.
//
//   - Direct chats (direct.go): SendTo opens or reuses the two-member group
//     that is the conversation with one person, marked by ExtensionDirect
//     in the Welcome; both starting at once merge into the lower group id.
//
//   - Invite, Remove, Update, and commits of proposals: see commit.go. A
//     commit is stored as pending with an outbox item that also holds its
//     intent (intent.go: a versioned JSON of the kind, invite, remove,
//     update or proposals, and the peer keys), submitted, and merged only
//     once the node accepted it; a stale one is discarded and the intent
//     built again on the new epoch; one whose reply was lost is submitted
//     again with the same client message id on the next connection, before
//     anything of its group is received. If that resubmission is stale
//     (the daemon restarted or reconnected, and another member's commit
//     won the epoch), the commit is discarded and its intent is run again
//     as a group job once the winning commit is applied, through the same
//     code as the API call (fresh KeyPackages; peers already members and
//     members already gone are skipped). The outbox item waits in state
//     "rerun" until the new pending commit carrying the intent is stored
//     (in the same transaction), so a daemon stopped before the job ran
//     runs it on its next connection. The daemon logs it (a warning with
//     the group and the intent kind, then the outcome); a failed re-run is
//     logged and its item closed, not retried (one cut off by a lost
//     connection waits for the next connection).
//
//   - Leave: a member cannot commit its own removal, so it sends a Remove
//     proposal for itself; the remaining member with the lowest leaf
//     commits it at once, each further member after LeaveCommitDelay per
//     rank (so an offline lowest member does not hold it up), and the
//     leaver proposes again if another commit dropped the proposal.
//
//   - Receiving (receive.go): a Welcome joins with the stored private half
//     of the KeyPackage it names (deleted after use, except the
//     last-resort one); group messages are routed by the group id of their
//     clear header. What can never apply is recorded as a "rejected" event
//     and skipped.
//
//   - Content (content.go, compose.go, receipts.go, expire.go): what
//     members say is an internal/content message after the sender's
//     epoch authenticator prefix; text, replies, reactions, author-only
//     edits and deletes, receipts and the disappearing-messages timer
//     apply alike on the sender and every receiver.
//
//   - Config.SelfUpdateInterval rotates the user's keys in every group.
//
//   - Rejoin (rejoin.go): a member that missed a commit (it receives a
//     message of a later epoch) asks the other members for a GroupInfo
//     through the plain queue (a signed request; the answer is sealed to a
//     key in it, so the node never reads it) and rejoins by an external
//     commit replacing its old leaf; only an accepted commit replaces its
//     state.
//
// Not done: a member whose whole state is lost (store deleted) has a new
// identity and must be invited again.
//
// # Trust policy
//
//   - identity.go: one identity rule (IdentityRule; DeviceRule, which is
//     internal/devid's: a basic credential whose identity is the leaf's
//     signature key, or an x509 chain of a device certificate the user key
//     issued for that signature key) applied to every leaf through
//     internal/mls's Policy hooks (groupPolicy, set on every group created,
//     joined, restored or resynced) and to fetched KeyPackages; external
//     commits only as a resync by the same user and key; proposals only
//     from members. Refusals are EventRefused.
//   - person vs device: the identity is this device's key D and the
//     person's user key U (equal for a single-device identity, the form of
//     every identity made before devices; U's private key only on a
//     primary device). Addressing (recipients, envelope senders, rejoin,
//     recovery rosters, forks) goes by a leaf's signature key, the device;
//     what a user sees and decides (messages, member events, consent,
//     contacts, safety numbers, direct chats of exactly two people,
//     removal) by userOf, the person the rule names. person.go turns an
//     invited person into the devices of its signed device list, and adds
//     one's own other devices to every group one makes or invites into.
//     refresh.go: a leaf made before linked devices lists the basic
//     credential type only, which keeps devices out of its groups; qpd
//     renews its own such leaves (a self-update, once connected and before
//     adding devices), and an Add refused for another member's old leaf
//     is a MembersMustUpdateError naming who must update.
//   - consent.go, contacts.go: invitations of non-contacts wait in a bounded
//     request inbox; blocked identities are dropped before parsing.
//   - safety.go: safety numbers and the verified mark; a contact's changed
//     key is EventContactKeyChanged.
//   - fork.go: epoch authenticators compared inside application messages.
//   - lifecycle.go: KeyPackage rotation and expiry, history retention, on
//     Config.Now.
//
// # Seams
//
//   - Config.Envelopes (EnvelopeHandler) applies what arrives when Groups
//     is off. While both are off the daemon does not read its queue, so
//     nothing is acknowledged that was not applied.
//   - Config.KeyPackages is a KeyPackageMaker (given the device's signer);
//     MLSKeyPackages.ExtensionTypes
//     advertises extra extensions.
package backend
