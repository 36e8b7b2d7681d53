// Package store is the node's persistent state: the KeyPackage directory and
// the per-recipient message queues. The node never sees plaintext; everything
// stored here is opaque bytes addressed by 32-byte Ed25519 identity keys.
//
// Store is an interface so that the embedded SQLite backend (the default) and a
// PostgreSQL backend for several stateless nodes can both serve the node. Every
// method that returns without error has made its write durable: the node
// replies to a client only after that.
//
// # Groups
//
// The node follows each group's public state (a view: the ratchet tree
// without secrets, the GroupContext, the transcript hashes), which the
// store keeps as opaque bytes next to the group's epoch and roster. The
// node, not the store, reads MLS: every method that changes a group takes
// a callback that the store runs inside its transaction, with the group
// locked, on the current view; the callback decides (and may refuse with
// its own error, which the store returns unwrapped in the chain). So the
// check of a commit against a view and the storing of the view it produces
// are one atomic step, also with several nodes on one database.
//
// A group id is claimed by CreateGroup with the creator's first view; a
// second claim is ErrGroupExists. SubmitCommit accepts exactly one commit
// per (group, epoch), the first to arrive whose callback accepts it, and
// answers a commit for an epoch that is not the group's current one with a
// *StaleEpochError naming the current epoch. A client that gets one drops
// its pending commit, applies the winning commit (already in its queue)
// and tries again.
//
// # Rosters
//
// The roster (the identities of the group's members) comes from the view:
// CreateGroup and each accepted commit's verdict set it. Only identities in
// the roster may submit a commit, fan out to the group or read its state;
// anyone else, and anyone asking about a group never created, gets
// ErrNotMember, checked before the epoch, so an outsider learns neither the
// group's existence nor its epoch. A resubmission of an accepted commit or
// message still gets its original answer. A commit's verdict names its
// recipients (the members but the committer, and the members it removed,
// who so receive their removal and then lose access) and the recipients of
// its Welcome. FanOut delivers to every member of the roster but the
// sender.
//
// Every commit and fanned-out message gets a per-group sequence number,
// strictly increasing from 1, giving the group's messages a total order, and
// is stored as Sequenced, so that recipients can tell it from a direct
// Enqueue, with that number as its GroupSeq, the same in every recipient's
// queue (a commit's Welcome carries the commit's number). A direct Enqueue
// never has one: its GroupSeq is 0. SubmitCommit and FanOut store the messages of every recipient in
// one transaction: all recipients get the message, or (on any error) none. A
// full recipient queue refuses the whole operation with ErrLimit rather than
// leave that member behind.
//
// Both are idempotent on (group, sender, client message id): a resubmission
// returns the original answer with Duplicate set and stores nothing, even if
// the group has moved on (within the backend's deduplication window: 7 days
// for SQLite; Enqueue's ids are remembered as long). Reusing an id for different content is ErrInvalid.
// An empty client message id is never deduplicated.
//
// # Arguments
//
// Every backend checks its arguments the same way, and the conformance suite
// in package storetest holds it to that: identity keys and recipients are
// exactly IdentityKeySize bytes, a sender is empty (anonymous) or an identity
// key (always an identity key for SubmitCommit and FanOut), Receive's limit is positive, group ids are 1 to MaxGroupIDSize bytes;
// anything else is ErrInvalid, never a panic. Backends may bound the length
// of a client message id (the SQLite backend allows 256 bytes).
//
// # Registration
//
// A node delivers only to registered identities and takes KeyPackages,
// enqueues and group messages only from them. How an identity registers is
// the node's policy (open with a proof of work, or by an operator's token);
// the store only remembers who is registered and which tokens are left.
// Registration is never taken back, so a node may cache a positive answer.
//
// # Quotas and expiry
//
// Identities are free, so no bound may rest on per-identity limits alone.
// A queue holds at most Limits.MaxQueueDepth messages; of those, direct
// enqueues (Enqueue) may fill all but Limits.GroupReserve, which only group
// traffic (SubmitCommit, FanOut) may use, so a flood of direct messages
// never blocks a user's groups. Direct messages from strangers — senders
// that share no group roster with the recipient, however many identities
// they use — may hold at most Limits.MaxStrangerMessages messages and
// Limits.MaxStrangerBytes payload bytes of one queue together; past that
// Enqueue refuses with ErrQuota. A message older than the node's TTL is
// deleted by Expire, acknowledged or not. The global disk budget is the
// node's: DiskUsage tells it how much the store takes.
//
// # Devices
//
// A user's devices (devices.go): the current signed device list per user
// (opaque bytes, the node checks them) with a version that only grows,
// the devices it names, and the devices revoked for ever, whose queues
// and KeyPackages PutDeviceList drops in the same transaction as the list
// that revokes them. Link slots are the short-lived rendezvous of device
// linking, in the store so that nodes sharing a database agree on them.
//
// # Blobs
//
// The ciphertext of attachments (Blobs, blob.go): metadata with quotas per
// owner and in all (CreateBlob) and expiry (ExpireBlobs) in the store, the
// chunks in a BlobChunks, which every Store is and an object store may be
// instead (package s3blob). RunBlobChunks in storetest checks either.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers use errors.Is.
var (
	// ErrNoKeyPackage: the identity has no KeyPackage left (not even a last-resort one).
	ErrNoKeyPackage = errors.New("store: no key package left")
	// ErrLimit: a configured limit (KeyPackages per identity, queue depth) would be exceeded.
	ErrLimit = errors.New("store: limit exceeded")
	// ErrInvalid: an argument is malformed (e.g. an identity key that is not 32 bytes).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// IdentityKeySize is the length of an Ed25519 public key, the address of a queue.
const IdentityKeySize = 32

// Limits bounds what one identity may hold. Zero fields mean "use the default".
type Limits struct {
	MaxKeyPackages int // per identity, not counting the last-resort one; default 100
	MaxQueueDepth  int // messages waiting in one queue; default 10000

	// The quotas of "Quotas and expiry" in quota.go; zero leaves each
	// unbounded (a node sets them, see DefaultGroupReserve).
	GroupReserve        int   // messages of a queue only group traffic may use
	MaxStrangerMessages int   // strangers' direct messages in one queue
	MaxStrangerBytes    int64 // strangers' direct payload bytes in one queue
}

// Message is one stored message in a recipient's queue.
type Message struct {
	Seq         uint64    // per-recipient sequence number, strictly increasing from 1, never reused
	Sender      []byte    // identity of the connection that enqueued it (may be empty for anonymous)
	ClientMsgID []byte    // sender-chosen id for idempotent enqueue (may be empty: not deduplicated)
	Payload     []byte    // opaque bytes
	EnqueuedAt  time.Time // when the node stored it
	Sequenced   bool      // stored by SubmitCommit or FanOut (in the group's order), not by Enqueue
	GroupSeq    uint64    // per-group sequence number of a sequenced message; 0 for Enqueue (and rows stored before it was kept)
}

// KeyPackageCount reports what an identity has left in the directory.
type KeyPackageCount struct {
	Remaining  int  // consumable packages
	LastResort bool // whether a last-resort package is present
}

// Store is the node's persistent state. Implementations are safe for concurrent use.
type Store interface {
	Registry
	Janitor
	Blobs
	Devices

	// PutKeyPackage stores a package for identity and returns its fingerprint
	// (SHA-256 of pkg). A lastResort package replaces any earlier last-resort
	// package of that identity; it is handed out by TakeKeyPackage but never
	// consumed. Storing the same bytes twice is not an error and stores one copy.
	PutKeyPackage(ctx context.Context, identity, pkg []byte, lastResort bool) (fingerprint [32]byte, err error)

	// TakeKeyPackage returns one consumable package of identity and deletes it,
	// atomically: concurrent callers never get the same package. When none is
	// left it returns the last-resort package without deleting it, and
	// ErrNoKeyPackage when there is none of either.
	TakeKeyPackage(ctx context.Context, identity []byte) ([]byte, error)

	// CountKeyPackages reports what identity has left.
	CountKeyPackages(ctx context.Context, identity []byte) (KeyPackageCount, error)

	// Enqueue appends payload to recipient's queue and returns its sequence
	// number. When clientMsgID is not empty, enqueue is idempotent on
	// (recipient, sender, clientMsgID): a repeat returns the original sequence
	// number with duplicate=true and stores nothing. The quotas of
	// "Quotas and expiry" apply (ErrLimit past the direct share of the
	// queue, ErrQuota past strangers' share).
	Enqueue(ctx context.Context, recipient, sender, clientMsgID, payload []byte) (seq uint64, duplicate bool, err error)

	// Receive returns up to limit messages of recipient with Seq > after, in
	// order, without deleting them.
	Receive(ctx context.Context, recipient []byte, after uint64, limit int) ([]Message, error)

	// Ack deletes recipient's messages with Seq <= upTo and returns how many it deleted.
	Ack(ctx context.Context, recipient []byte, upTo uint64) (int, error)

	// LastSeq returns the last sequence number recipient's queue handed
	// out (0 for a queue that never had a message): numbers above it were
	// never given.
	LastSeq(ctx context.Context, recipient []byte) (uint64, error)

	// Drain returns every message of recipient in order and deletes them in the
	// same transaction (the seed protocol's fetch).
	Drain(ctx context.Context, recipient []byte) ([]Message, error)

	// CreateGroup claims groupID for creator with the group's first view
	// at epoch and its roster (which must list creator). A group id
	// claimed before is ErrGroupExists.
	CreateGroup(ctx context.Context, groupID, creator []byte, epoch uint64, view []byte, roster [][]byte) error

	// SubmitCommit runs check on the current view of groupID if sender is
	// in its roster (else ErrNotMember) and epoch is its current epoch
	// (else a *StaleEpochError, errors.Is(err, ErrStaleEpoch), naming the
	// current epoch, and check does not run). If check accepts, the group
	// moves to epoch+1 with the verdict's view and roster, and in the same
	// transaction commit goes to the queue of every verdict recipient and
	// welcome (empty when nobody joins) to every welcome recipient. An
	// error of check is returned and nothing is stored. A resubmission
	// with the same (sender, clientMsgID) returns the original result with
	// Duplicate set. See "Groups" in the package documentation.
	SubmitCommit(ctx context.Context, groupID []byte, epoch uint64, sender, clientMsgID, commit, welcome []byte,
		check CommitCheck) (CommitResult, error)

	// FanOut appends a message of groupID to the queue of every member of
	// the roster but sender and revoked devices (Devices) in one transaction and returns its per-group
	// sequence number and recipients. With a non-nil update (a proposal the view caches)
	// the store runs it on the current view and keeps the view it returns;
	// its error refuses the message. It is idempotent on (groupID, sender,
	// clientMsgID) like SubmitCommit, and refuses a sender outside the
	// group's roster with ErrNotMember.
	FanOut(ctx context.Context, groupID, sender, clientMsgID, payload []byte, update ViewUpdate) (FanOutResult, error)

	// FanOutBatch is FanOut for each of items, in order, in one
	// transaction: the messages that go out are durable together, and each
	// is stored or refused as FanOut would (a refused one stores nothing).
	// The first refused item ends the batch: the results are those of the
	// items before it (stored, or duplicates), all committed, and the error
	// is its own; the items after it are not tried. So a group's order is
	// exactly that of one FanOut call after another. With no refusal the
	// error is nil and there is one result per item. An error of the batch
	// itself (a failed commit) comes with no results: nothing was stored.
	// Items are at most MaxFanOutBatch; more is ErrInvalid.
	FanOutBatch(ctx context.Context, sender []byte, items []FanOutItem) ([]FanOutResult, error)

	// GroupState reports what the node knows of groupID to member: a
	// member's identity outside the roster (or a group never created) gets
	// ErrNotMember.
	GroupState(ctx context.Context, groupID, member []byte) (GroupState, error)

	// Close releases the store. Methods called afterwards return ErrClosed.
	Close() error
}

// Notifier is implemented by a Store that several nodes can share (the
// PostgreSQL backend). Each node wakes its own push subscriptions when it
// stores a message; a message stored through another node sharing the
// database reaches this node's subscribers only through Notifications.
type Notifier interface {
	// Notifications calls fn with the recipient of each message stored by
	// any node sharing the store (this one included), from when it starts
	// listening until ctx ends; then it returns nil. fn(nil) means that any
	// recipient may have new messages: it is called each time listening
	// (re)starts, since notifications may have been missed while it was not
	// listening. fn is called from one goroutine, one call at a time, and
	// must not block. A notification is a hint that a queue has new
	// messages, never a message: readers learn what is new from the store.
	// Notifications returns an error only when it cannot go on, e.g.
	// ErrClosed once the store is closed; a lost connection is retried.
	Notifications(ctx context.Context, fn func(recipient []byte)) error
}
