package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// ConnState is the state of the node connection.
type ConnState int

// Connection states.
const (
	StateNotRegistered ConnState = iota + 1 // no identity: no connection is kept
	StateConnecting                         // an attempt is under way
	StateConnected                          // connected and authenticated
	StateDisconnected                       // down; retrying with backoff
)

func (s ConnState) String() string {
	switch s {
	case StateNotRegistered:
		return "not_registered"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// ParseConnState reads a state name written by String.
func ParseConnState(s string) (ConnState, bool) {
	for st := StateNotRegistered; st <= StateDisconnected; st++ {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// ConnectionInfo describes the node connection.
type ConnectionInfo struct {
	Address   string
	State     ConnState
	LastError string
	Since     time.Time
	// PinnedCertSHA256 is the hex fingerprint of the node certificate the
	// current or last connection was verified against.
	PinnedCertSHA256 string
	// KeyExchange is the TLS key exchange group of the current or last
	// connection ("X25519MLKEM768" when post-quantum).
	KeyExchange string
}

type connState struct {
	state    ConnState
	lastErr  string
	since    time.Time
	client   *nodeclient.Client
	pinned   string
	kx       string
	recorded ConnState // last state written to the event log
}

// Connection reports the node connection.
func (b *Backend) Connection() ConnectionInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ConnectionInfo{
		Address:          b.cfg.NodeAddr,
		State:            b.conn.state,
		LastError:        b.conn.lastErr,
		Since:            b.conn.since,
		PinnedCertSHA256: b.conn.pinned,
		KeyExchange:      b.conn.kx,
	}
}

func (b *Backend) client() *nodeclient.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conn.client
}

// setState changes the in-memory state and, when record is set and the
// state differs from the last recorded one, appends a connection event.
func (b *Backend) setState(state ConnState, lastErr string, record bool) {
	b.mu.Lock()
	changed := b.conn.state != state || b.conn.lastErr != lastErr
	if b.conn.state != state {
		b.conn.since = time.Now()
	}
	b.conn.state, b.conn.lastErr = state, lastErr
	if state != StateConnected {
		b.conn.client = nil
	}
	doRecord := record && b.conn.recorded != state
	if doRecord {
		b.conn.recorded = state
	}
	b.mu.Unlock()
	if doRecord {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := b.update(ctx, func(tx *store.Tx) error {
			_, err := tx.AppendEvent(store.Event{Kind: store.EventConnection, State: state.String(), Detail: lastErr})
			return err
		})
		if err != nil {
			b.log.Error("record connection event", "err", err)
		}
	} else if changed {
		b.changed.broadcast()
	}
}

// Run keeps the node connection until ctx is done. It waits for an
// identity first, then dials, and redials with exponential backoff
// (with jitter) whenever a dial fails or a connection ends before
// MaxBackoff; a connection that lasted longer is redialed at once.
func (b *Backend) Run(ctx context.Context) error {
	if b.cfg.NodeAddr == "" {
		<-ctx.Done()
		return nil
	}
	select {
	case <-b.registered:
	case <-ctx.Done():
		return nil
	}
	id, err := b.identity(ctx)
	if err != nil {
		return fmt.Errorf("backend: run: %w", err)
	}
	// (Deferred first, so it runs last: after every receiver ended.)
	defer b.stopReceipts()
	defer b.signers.forgetAll()
	b.scheduleReceipts(0) // what a previous run still owed
	maintained := make(chan struct{})
	go func() { b.maintain(ctx); close(maintained) }()
	defer func() { <-maintained }()
	expired := make(chan struct{})
	go func() { b.expireLoop(ctx); close(expired) }()
	defer func() { <-expired }()
	backoff := b.cfg.MinBackoff
	for {
		b.setState(StateConnecting, "", false)
		c, err := b.dial(ctx, id.PrivateKey)
		if err != nil {
			if ctx.Err() != nil {
				b.setState(StateDisconnected, "shutting down", false)
				return nil
			}
			b.log.Warn("node connection failed", "node", b.cfg.NodeAddr, "err", err, "retry_in", backoff)
			b.setState(StateDisconnected, err.Error(), true)
			if !sleepCtx(ctx, jitter(backoff)) {
				return nil
			}
			backoff = min(2*backoff, b.cfg.MaxBackoff)
			continue
		}
		connected := time.Now()
		b.mu.Lock()
		b.conn.client = c
		b.conn.pinned = hexFingerprint(c.ServerCertificate())
		b.conn.kx = c.KeyExchange().String()
		b.mu.Unlock()
		b.setState(StateConnected, "", true)
		b.log.Info("connected to node", "node", b.cfg.NodeAddr, "tls_key_exchange", b.conn.kx)
		sessCtx, endSession := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { b.keepKeyPackages(sessCtx, c) })
		wg.Go(func() { b.sendOutbox(sessCtx, c) })
		if b.cfg.Groups {
			// Commits whose reply was lost get their verdict before any
			// message of their group is received.
			if err := b.resolvePending(sessCtx, c); err != nil {
				b.log.Warn("pending commits", "err", err)
				c.Close()
			}
			if err := b.resumeRecoveries(sessCtx, id.PublicKey()); err != nil {
				b.log.Warn("group recoveries", "err", err)
			}
			wg.Go(func() { b.runJobs(sessCtx) })
			wg.Go(func() {
				// Leaves from before linked devices learn their credential
				// types (refresh.go).
				if _, err := b.RefreshCapabilities(sessCtx, nil); err != nil && sessCtx.Err() == nil {
					b.log.Warn("leaf capabilities", "err", err)
				}
			})
		}
		if b.cfg.Envelopes != nil {
			wg.Go(func() { b.receive(sessCtx, c, id.PublicKey()) })
		}
		select {
		case <-c.Done():
			endSession()
			wg.Wait()
			b.setState(StateDisconnected, "connection lost", true)
			// A connection that lasted starts the backoff over. One that
			// ended soon after it was made (a node that drops every
			// connection, or keeps refusing our acks so that we close
			// it) is made again only after the backoff, which grows:
			// every new connection costs a handshake, a subscription
			// that reads the queue again, and connection events here.
			if time.Since(connected) >= b.cfg.MaxBackoff {
				backoff = b.cfg.MinBackoff
				b.log.Warn("node connection lost", "node", b.cfg.NodeAddr)
				continue
			}
			b.log.Warn("node connection lost soon after it was made", "node", b.cfg.NodeAddr, "retry_in", backoff)
			if !sleepCtx(ctx, jitter(backoff)) {
				b.setState(StateDisconnected, "shutting down", false)
				return nil
			}
			backoff = min(2*backoff, b.cfg.MaxBackoff)
		case <-ctx.Done():
			endSession()
			c.Close()
			wg.Wait()
			b.setState(StateDisconnected, "shutting down", false)
			return nil
		}
	}
}

// keepKeyPackages tops up KeyPackages at the node on connect, then every
// KeyPackageCheck, and at once when the node notices that they run low.
func (b *Backend) keepKeyPackages(ctx context.Context, c *nodeclient.Client) {
	if b.cfg.KeyPackages == nil {
		return
	}
	t := time.NewTicker(b.cfg.KeyPackageCheck)
	defer t.Stop()
	var again <-chan time.Time
	for {
		if _, err := b.topUpKeyPackages(ctx, c); err != nil && ctx.Err() == nil {
			b.log.Warn("key package upload", "err", err)
		}
		select {
		case <-t.C:
		case <-b.kpLow:
			// The node sends at most one notice a second: look again
			// once that second is over, for fetches it did not report.
			again = time.After(lowWaterRecheck)
		case <-again:
			again = nil
		case <-ctx.Done():
			return
		}
	}
}

// lowWaterRecheck is when qpd counts its KeyPackages again after topping
// up on a low-water notice.
const lowWaterRecheck = 2 * time.Second

// keyPackagesLow wakes the top-up after the node's low-water notice.
func (b *Backend) keyPackagesLow() {
	select {
	case b.kpLow <- struct{}{}:
	default:
	}
}

func hexFingerprint(der []byte) string {
	if len(der) == 0 {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func jitter(d time.Duration) time.Duration {
	// 75%..125% of d.
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dial connects to the node (anonymously when priv is nil) and checks the
// connection with a ping.
func (b *Backend) dial(ctx context.Context, priv ed25519.PrivateKey) (*nodeclient.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	cfg := nodeclient.Config{Identity: priv, RequirePQTLS: b.cfg.RequirePQTLS, Logger: b.log.With("component", "nodeclient")}
	if b.cfg.NodeCert != nil {
		cfg.PinnedCert = b.cfg.NodeCert
	} else {
		cfg.VerifyServer = b.verifyTOFU
	}
	c, err := nodeclient.Dial(dctx, b.cfg.NodeAddr, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Ping(dctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("first ping to %s: %w", b.cfg.NodeAddr, err)
	}
	if priv != nil {
		if err := b.registerAtNode(dctx, c); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// registerAtNode registers the identity with the node unless it is
// already: with the configured token, else with the proof of work an open
// node asks for.
func (b *Backend) registerAtNode(ctx context.Context, c *nodeclient.Client) error {
	err := c.Register(ctx, b.cfg.RegistrationToken)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nodeclient.ErrNotRegistered) && b.cfg.RegistrationToken == "":
		return fmt.Errorf("register at %s: %w (ask its operator for a token: qpnode token create; start qpd with --registration-token or QPQ_REGISTRATION_TOKEN)", b.cfg.NodeAddr, err)
	case errors.Is(err, nodeclient.ErrBadToken):
		return fmt.Errorf("register at %s: %w (the token is unknown, expired or used up; ask the operator for a new one)", b.cfg.NodeAddr, err)
	}
	return fmt.Errorf("register at %s: %w", b.cfg.NodeAddr, err)
}

var errPinMismatch = errors.New("pin mismatch")

// verifyTOFU pins the first certificate the node presents (in the store)
// and accepts only that one afterwards.
func (b *Backend) verifyTOFU(der []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pinned store.PinnedCert
	err := b.update(ctx, func(tx *store.Tx) error {
		p, err := tx.PinnedCert(b.cfg.NodeAddr)
		if errors.Is(err, store.ErrNotFound) {
			_, err := tx.PinCert(b.cfg.NodeAddr, der)
			if err == nil {
				b.log.Info("pinned node certificate (trust on first use)", "node", b.cfg.NodeAddr, "sha256", hexFingerprint(der))
			}
			return err
		}
		if err != nil {
			return err
		}
		if !p.Matches(der) {
			pinned = p
			return errPinMismatch
		}
		if !bytes.Equal(p.Cert, der) {
			// Renewed with the same key: remember the newest.
			if _, err := tx.PinCert(b.cfg.NodeAddr, der); err != nil {
				return err
			}
			b.log.Info("node renewed its certificate with the pinned key", "node", b.cfg.NodeAddr, "sha256", hexFingerprint(der))
		}
		return nil
	})
	if errors.Is(err, errPinMismatch) {
		return fmt.Errorf("%w: node %s presents certificate sha256 %s with another key than the certificate sha256 %x pinned since %s; if the node's key was replaced on purpose, restart qpd once with --repin (or give the new certificate with --server-cert)",
			nodeclient.ErrServerCertChanged, b.cfg.NodeAddr, hexFingerprint(der), pinned.Fingerprint[:], pinned.PinnedAt.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return fmt.Errorf("check pinned node certificate: %w", err)
	}
	return nil
}

// ForgetPin forgets the node certificate pinned by trust on first use, so
// that the next connection pins the certificate it sees.
func (b *Backend) ForgetPin(ctx context.Context) (bool, error) {
	var had bool
	err := b.update(ctx, func(tx *store.Tx) (err error) { had, err = tx.UnpinCert(b.cfg.NodeAddr); return })
	if err != nil {
		return false, fmt.Errorf("backend: forget pin: %w", err)
	}
	return had, nil
}

// Ping measures the round trip of one ping to the node. Without a live
// connection it makes a one-off anonymous connection for the ping.
func (b *Backend) Ping(ctx context.Context) (time.Duration, error) {
	if b.cfg.NodeAddr == "" {
		return 0, fmt.Errorf("%w: no node address configured", ErrNotConnected)
	}
	c := b.client()
	if c == nil {
		var err error
		c, err = b.dial(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrNotConnected, b.cfg.NodeAddr, err)
		}
		defer c.Close()
	}
	start := time.Now()
	if _, err := c.Ping(ctx); err != nil {
		return 0, fmt.Errorf("%w: ping %s: %w", ErrNotConnected, b.cfg.NodeAddr, err)
	}
	return time.Since(start), nil
}

// publishKeyPackages uploads KeyPackages when MLS and the node allow it and
// otherwise says why not.
func (b *Backend) publishKeyPackages(ctx context.Context) (int, string, error) {
	if b.cfg.KeyPackages == nil {
		return 0, "no KeyPackages uploaded: MLS KeyPackage generation is not wired into qpd yet", nil
	}
	c := b.client()
	if c == nil {
		return 0, "KeyPackages will be uploaded once qpd is connected to the node", nil
	}
	n, err := b.topUpKeyPackages(ctx, c)
	return n, "", err
}

// topUpKeyPackages brings the node's stock of this identity's KeyPackages
// up to the target, plus a last-resort one, replacing those about to expire
// (lifecycle.go). Each private half is committed to the store before its
// KeyPackage is uploaded.
func (b *Backend) topUpKeyPackages(ctx context.Context, c *nodeclient.Client) (int, error) {
	b.kpMu.Lock()
	defer b.kpMu.Unlock()
	id, err := b.identity(ctx)
	if err != nil {
		return 0, err
	}
	pub := id.PublicKey()
	type want struct {
		suite      mls.CipherSuite
		lastResort bool
	}
	now := b.cfg.Now()
	stocks, err := b.keyPackageStock(ctx, now)
	if err != nil {
		return 0, err
	}
	var plan []want
	for _, cs := range b.cfg.KeyPackageSuites {
		count, err := c.KeyPackageCountSuite(ctx, pub, uint16(cs))
		if err != nil {
			return 0, fmt.Errorf("count key packages of %s: %w", cs.Name(), err)
		}
		st := stocks[cs]
		if !count.LastResort || !st.freshLastResort {
			plan = append(plan, want{cs, true})
		}
		// Those about to expire still count at the node, but peers will
		// soon refuse them.
		for i := max(0, count.Remaining-st.expiring); i < b.cfg.KeyPackageTarget; i++ {
			plan = append(plan, want{cs, false})
		}
	}
	s, err := signer(id)
	id.Wipe()
	if err != nil {
		return 0, err
	}
	defer clear(s.SignaturePriv)
	uploaded := 0
	for _, w := range plan {
		lastResort := w.lastResort
		kp, err := b.cfg.KeyPackages.NewKeyPackage(s, w.suite, lastResort, now)
		if err != nil {
			return uploaded, fmt.Errorf("make key package: %w", err)
		}
		err = b.update(ctx, func(tx *store.Tx) error {
			return tx.PutKeyPackage(store.KeyPackageSecret{Ref: kp.Ref, KeyPackage: kp.KeyPackage, Secrets: kp.Secrets, LastResort: lastResort, ExpiresAt: kp.NotAfter})
		})
		clear(kp.Secrets)
		if err != nil {
			return uploaded, fmt.Errorf("store key package: %w", err)
		}
		if _, err := c.UploadKeyPackage(ctx, pub, kp.KeyPackage, lastResort); err != nil {
			return uploaded, fmt.Errorf("upload key package: %w", err)
		}
		if err := b.update(ctx, func(tx *store.Tx) error { return tx.MarkKeyPackageUploaded(kp.Ref) }); err != nil {
			return uploaded, fmt.Errorf("store key package: %w", err)
		}
		uploaded++
	}
	expiring := 0
	for _, st := range stocks {
		expiring += st.expiring
	}
	if len(plan) > 0 && expiring > 0 {
		b.log.Info("key packages rotated before expiry", "expiring", expiring, "uploaded", uploaded)
	}
	return uploaded, b.pruneKeyPackages(ctx, now)
}
