package backend

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// KeyPackageBundle is a fresh KeyPackage and its private half.
type KeyPackageBundle struct {
	// Ref is the KeyPackageRef (RFC 9420 section 5.2).
	Ref []byte
	// KeyPackage is the RFC 9420 MLSMessage carrying the KeyPackage, as
	// uploaded to the node.
	KeyPackage []byte
	// Secrets is the serialized private material (init and leaf keys).
	Secrets []byte
	// NotAfter is the end of the KeyPackage's lifetime (zero: none).
	NotAfter time.Time
}

// KeyPackageMaker makes KeyPackages for an identity, valid from now. It is
// the seam where internal/mls plugs in.
type KeyPackageMaker interface {
	// NewKeyPackage makes a KeyPackage of identity in suite cs, valid from now.
	// s is the device's signer (its credential and signature key).
	NewKeyPackage(s *mls.Signer, cs mls.CipherSuite, lastResort bool, now time.Time) (KeyPackageBundle, error)
}

// Config configures New.
type Config struct {
	// Store is the daemon's state; the Backend becomes its only user.
	Store *store.Store
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// StateDir is reported by Status.
	StateDir string
	// Version is reported by Status.
	Version string

	// NodeAddr is the node's host:port. Empty disables the connection.
	NodeAddr string
	// NodeCert, when set, is the node's certificate (DER) to pin. When nil,
	// the first certificate seen is pinned in the store (trust on first use).
	NodeCert []byte

	// KeyPackages makes KeyPackages (nil until MLS is wired in).
	KeyPackages KeyPackageMaker
	// Envelopes applies what arrives in the user's node queue. While it is
	// nil (and Groups is off) the daemon does not read the queue, so
	// nothing is acknowledged that was not applied.
	Envelopes EnvelopeHandler
	// Groups turns on the MLS groups: the Backend applies its queue's
	// envelopes itself (Envelopes is ignored) and submits commits.
	Groups bool
	// ManualJoin keeps arriving Welcomes of contacts in the store until a
	// Join call accepts them; by default qpd joins as soon as a contact's
	// Welcome arrives.
	ManualJoin bool
	// Invitations says whose Welcomes are taken without asking (default
	// InviteContacts: the others wait as requests, consent.go).
	Invitations InvitePolicy
	// SelfUpdateInterval is how often a connected daemon rotates its own
	// keys in every group (a self-update commit); 0 or negative: never.
	SelfUpdateInterval time.Duration
	// KeyPackageSuites are the cipher suites qpd keeps KeyPackages of at
	// the node (DefaultKeyPackageSuites when empty).
	KeyPackageSuites []mls.CipherSuite
	// GroupSuite is the suite of new groups when the caller names none
	// (DefaultCipherSuite when zero); it must be one of KeyPackageSuites.
	GroupSuite mls.CipherSuite
	// KeyPackageTarget is how many consumable KeyPackages to keep at the
	// node per suite (default 10).
	KeyPackageTarget int
	// KeyPackageCheck is how often a connected daemon tops up its
	// KeyPackages at the node (default 5 minutes).
	KeyPackageCheck time.Duration
	// RegistrationToken is the node operator's token qpd registers with
	// when the node asks for one; empty: a proof of work where the node
	// allows it.
	RegistrationToken string

	// LeaveCommitDelay is how long, per rank, the other remaining members
	// wait before committing a member's request to leave themselves: the
	// lowest remaining leaf commits it at once, the next after one delay,
	// the one after that after two, so an offline lowest member does not
	// hold the leaving up (default 30s). Extra commits lose harmlessly:
	// the node takes one per epoch, and a loser finds nothing left to
	// commit.
	LeaveCommitDelay time.Duration

	// ReceiptDelay is how long a delivery receipt waits for the next
	// messages to name them too (default 20ms; receipts_batch.go).
	ReceiptDelay time.Duration

	// Now is the clock of KeyPackage lifetimes and retention (default
	// time.Now); tests inject one.
	Now func() time.Time
	// KeyPackageRotateBefore is how long before a KeyPackage expires it
	// is replaced, the last-resort one included (default 14 days).
	KeyPackageRotateBefore time.Duration
	// KeyPackageGrace is how long after its lifetime a KeyPackage's
	// private half is kept for a Welcome still on its way (default 7
	// days); then it is deleted, used or not.
	KeyPackageGrace time.Duration
	// Retention prunes old history and events (lifecycle.go); the zero
	// value keeps everything.
	Retention Retention
	// NoReceipts: send no delivery or read receipts (receipts.go); the
	// other members' receipts are still shown.
	NoReceipts bool

	// Backoff bounds of the reconnect loop (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// RequirePQTLS refuses a node without the hybrid post-quantum TLS key
	// exchange X25519MLKEM768 (by default it is preferred, not required).
	RequirePQTLS bool
	// DialTimeout bounds one connection attempt (default 10s).
	DialTimeout time.Duration
}

// Backend owns the daemon's state. Create it with New, start its
// connection loop with Run, and stop it by cancelling Run's context.
type Backend struct {
	cfg     Config
	st      *store.Store
	log     *slog.Logger
	changed *notifier
	// signers keeps the groups' content signers for texts signed before
	// their transactions (presign.go); presignedSent counts the texts sent
	// as signed so.
	signers       signers
	presignedSent atomic.Int64
	// outboxReads counts the outbox sender's reads of pending items.
	outboxReads atomic.Int64

	// registered is signalled when Register creates the identity.
	registered chan struct{}
	regOnce    sync.Once

	mu   sync.Mutex // guards conn
	conn connState

	// kpMu serializes KeyPackage top-ups, so that two never overshoot.
	kpMu sync.Mutex
	// kpLow is signalled when the node notices that this identity's
	// KeyPackages run low: the top-up runs at once.
	kpLow chan struct{}

	// gmu serializes every change of MLS group state: group operations,
	// commits from building to the node's verdict, and the receiver. It is
	// always taken before a store transaction, never inside one.
	gmu sync.Mutex
	// jobs is group work scheduled by the receiver.
	jobs chan groupJob
	// beforeSubmit, when set (by tests), runs after a pending commit is
	// stored and before it is submitted.
	beforeSubmit func()
	// beforeRerun, when set (by tests), runs when a job starts running
	// again the intent of a stale commit.
	beforeRerun func(ctx context.Context)
	// dropEnvelope, when set (by tests), loses the envelopes it returns
	// true for: the cursor moves past them unapplied.
	dropEnvelope func(nodeclient.Envelope) bool
	// rejoin tracks the groups this member is behind in (under gmu).
	rejoin rejoinState
	// blocked holds the blocked identities (contacts.go), in memory so
	// that their traffic is dropped before anything is read or stored.
	blockMu sync.RWMutex
	blocked map[string]bool
	// strangerRejects bounds the rejected events strangers cause
	// (consent.go).
	strangerRejects *rate.Limiter
	// forks remembers the fork reports made (fork.go; under gmu).
	forks map[forkKey]bool
	// receiptBatch, while applyEnvelopes applies a batch, collects its
	// delivery receipts (receipts_batch.go; under gmu).
	receiptBatch *[]pendingReceipt
	// reread is the node cursor before the node's queue was found behind
	// it and read again from its start (pipeline.go): envelopes numbered
	// up to it may have been applied before.
	reread atomic.Uint64
	// owed are the delivery receipts of committed batches that wait to go
	// out together (receipts_batch.go).
	owed owedReceipts
	// sends queues API sends for their shared transaction (sendbatch.go).
	sends sendQueue
	// directMu makes finding or making a direct chat one step (direct.go):
	// two SendTo calls to one person make one chat. Taken before gmu.
	directMu sync.Mutex
}

// New makes a Backend over cfg.Store.
func New(cfg Config) (*Backend, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("backend: %w: no store", ErrInvalidArgument)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeyPackageTarget <= 0 {
		cfg.KeyPackageTarget = 10
	}
	if cfg.LeaveCommitDelay <= 0 {
		cfg.LeaveCommitDelay = 30 * time.Second
	}
	if cfg.ReceiptDelay <= 0 {
		cfg.ReceiptDelay = defaultReceiptDelay
	}
	if cfg.KeyPackageCheck <= 0 {
		cfg.KeyPackageCheck = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeyPackageRotateBefore <= 0 {
		cfg.KeyPackageRotateBefore = 14 * 24 * time.Hour
	}
	if cfg.KeyPackageGrace <= 0 {
		cfg.KeyPackageGrace = 7 * 24 * time.Hour
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if len(cfg.KeyPackageSuites) == 0 {
		cfg.KeyPackageSuites = DefaultKeyPackageSuites
	}
	if cfg.GroupSuite == 0 {
		cfg.GroupSuite = DefaultCipherSuite
	}
	if !slices.Contains(cfg.KeyPackageSuites, cfg.GroupSuite) {
		return nil, fmt.Errorf("backend: the default group suite %s is not among the KeyPackage suites", cfg.GroupSuite.Name())
	}
	b := &Backend{
		cfg:             cfg,
		st:              cfg.Store,
		log:             cfg.Logger,
		changed:         newNotifier(),
		registered:      make(chan struct{}),
		kpLow:           make(chan struct{}, 1),
		jobs:            make(chan groupJob, 256),
		rejoin:          rejoinState{asked: map[string]time.Time{}, answered: map[string]time.Time{}, from: map[string][][]byte{}, keys: map[string]*ecdh.PrivateKey{}},
		blocked:         map[string]bool{},
		forks:           map[forkKey]bool{},
		strangerRejects: rate.NewLimiter(strangerRejectRate, strangerRejectBurst),
	}
	if cfg.Groups {
		b.cfg.Envelopes = b
	}
	if err := b.loadBlocked(context.Background()); err != nil {
		return nil, err
	}
	b.conn = connState{state: StateNotRegistered, since: time.Now()}
	if _, err := b.identity(context.Background()); err == nil {
		b.conn.state = StateDisconnected
		b.markRegistered()
	} else if !errors.Is(err, ErrNotRegistered) {
		return nil, err
	}
	return b, nil
}

func (b *Backend) markRegistered() { b.regOnce.Do(func() { close(b.registered) }) }

// Changed returns a channel closed by the next committed change. Take it
// before reading the state you wait on.
func (b *Backend) Changed() <-chan struct{} { return b.changed.wait() }

// update runs fn in one write transaction and wakes waiters after commit.
// It is the only path by which the Backend changes the store.
func (b *Backend) update(ctx context.Context, fn func(*store.Tx) error) error {
	if err := b.st.Update(ctx, fn); err != nil {
		return err
	}
	b.changed.broadcast()
	return nil
}

func (b *Backend) view(ctx context.Context, fn func(*store.Tx) error) error {
	return b.st.View(ctx, fn)
}

// identity returns the stored identity or ErrNotRegistered.
func (b *Backend) identity(ctx context.Context) (store.Identity, error) {
	var id store.Identity
	err := b.view(ctx, func(tx *store.Tx) (err error) { id, err = tx.Identity(); return })
	if errors.Is(err, store.ErrNotFound) {
		return store.Identity{}, ErrNotRegistered
	}
	if err != nil {
		return store.Identity{}, fmt.Errorf("backend: %w", err)
	}
	return id, nil
}

// IdentityKey returns the person's identity (user) public key, or
// ErrNotRegistered. It is this device's key too unless the device was
// linked (OwnKeys).
func (b *Backend) IdentityKey(ctx context.Context) (ed25519.PublicKey, error) {
	user, _, err := b.OwnKeys(ctx)
	return user, err
}

// FormatKey writes an identity key the way humans see it: lowercase hex.
func FormatKey(k []byte) string { return hex.EncodeToString(k) }

// ParseKey reads an identity key written as 64 hex characters.
func ParseKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: identity key %q: want %d hex characters", ErrInvalidArgument, truncate(s, 80), 2*ed25519.PublicKeySize)
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// RegisterResult is what Register did.
type RegisterResult struct {
	Identity ed25519.PublicKey
	// Created is false when the identity already existed.
	Created bool
	// KeyPackagesUploaded counts KeyPackages published by this call.
	KeyPackagesUploaded int
	// Notices explain what could not be done now and why.
	Notices []string
}

// Register creates and persists the Ed25519 identity if there is none and
// publishes KeyPackages when it can. It is idempotent: a second call
// returns the same identity with Created false.
func (b *Backend) Register(ctx context.Context) (RegisterResult, error) {
	var res RegisterResult
	err := b.update(ctx, func(tx *store.Tx) error {
		id, err := tx.Identity()
		if err == nil {
			res.Identity = append(ed25519.PublicKey{}, id.UserPublicKey()...)
			id.Wipe()
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate identity key: %w", err)
		}
		if err := tx.PutIdentity(store.Identity{PrivateKey: priv}); err != nil {
			return err
		}
		res.Identity, res.Created = priv.Public().(ed25519.PublicKey), true
		return nil
	})
	if err != nil {
		return RegisterResult{}, opError("register", err)
	}
	if res.Created {
		b.log.Info("identity created", "identity", FormatKey(res.Identity))
		b.setState(StateDisconnected, "", false)
		b.markRegistered()
	}
	n, notice, err := b.publishKeyPackages(ctx)
	if err != nil {
		return RegisterResult{}, opError("register", err)
	}
	res.KeyPackagesUploaded = n
	if notice != "" {
		res.Notices = append(res.Notices, notice)
	}
	return res, nil
}

// Status is a snapshot of the daemon.
type Status struct {
	Identity          ed25519.PublicKey // the person (user key); nil when not registered
	Device            ed25519.PublicKey // this device's key (Identity unless linked)
	Node              ConnectionInfo
	KeyPackagesLeft   int
	KeyPackagesKnown  bool
	KeyPackageSecrets int
	Groups            int
	Unread            uint64
	OutboxPending     uint64
	EventHead         uint64
	Version           string
	StateDir          string
}

// Status reports the identity, the node connection and local counters.
func (b *Backend) Status(ctx context.Context) (Status, error) {
	s := Status{Version: b.cfg.Version, StateDir: b.cfg.StateDir, Node: b.Connection()}
	err := b.view(ctx, func(tx *store.Tx) error {
		id, err := tx.Identity()
		switch {
		case err == nil:
			s.Identity = append(ed25519.PublicKey{}, id.UserPublicKey()...)
			s.Device = id.PublicKey()
			id.Wipe()
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if s.KeyPackageSecrets, err = tx.CountKeyPackages(); err != nil {
			return err
		}
		groups, err := tx.Groups(false)
		if err != nil {
			return err
		}
		s.Groups = len(groups)
		if s.Unread, err = tx.CountUnread(nil); err != nil {
			return err
		}
		if s.OutboxPending, err = tx.CountPendingOutbox(); err != nil {
			return err
		}
		s.EventHead, err = tx.EventHead()
		return err
	})
	if err != nil {
		return Status{}, opError("status", err)
	}
	if s.Identity != nil {
		if c := b.client(); c != nil {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			kc, err := c.KeyPackageCount(cctx, s.Device)
			cancel()
			if err == nil {
				s.KeyPackagesLeft, s.KeyPackagesKnown = kc.Remaining, true
			} else {
				b.log.Debug("key package count", "err", err)
			}
		}
	}
	return s, nil
}
