package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"capnproto.org/go/capnp/v3"
	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/internal/pow"
	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/node/store"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxPayloadSize    = 1 << 20
	DefaultMaxKeyPackageSize = 64 << 10
	DefaultRateLimit         = 200
	DefaultRateBurst         = 400
	DefaultReceiveBatch      = 256
	DefaultMaxRecipients     = 10000
	DefaultMaxConnsPerIP     = 256
	DefaultMaxAnonPerIP      = 16
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerID     = 8
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultFrameTimeout      = 20 * time.Second
	DefaultMemoryBudget      = 512 << 20
	maxBatchBytes            = 4 << 20 // bound on the payload bytes of one reply or push
	maxClientMsgIDSize       = 64
	streamAcceptTimeout      = 10 * time.Second
)

// Config configures a Server. Store is required; zero fields take defaults.
type Config struct {
	Store  store.Store
	Logger *slog.Logger // nil: discard

	MaxPayloadSize    int        // bytes per enqueued payload, group message or Welcome
	MaxRecipients     int        // recipients (with welcome recipients) of one group call
	MaxKeyPackageSize int        // bytes per KeyPackage
	RateLimit         rate.Limit // sustained requests per second per identity
	RateBurst         int        // requests an identity may make at once
	ReceiveBatch      int        // messages per receive reply or push, at most
	MaxConnsPerIP     int        // open connections from one IP address (Serve refuses more)
	Metrics           *Metrics   // nil: none

	// Registration (see registration.go); the zero policy checks nothing.
	Registration  Policy
	PowDifficulty int // bits of work for an open registration; 0: DefaultPowDifficulty, negative: none

	// Quotas and expiry (see quota.go; the per-queue ones are the store's Limits).
	MessageTTL     time.Duration // messages older than this are deleted
	ExpireInterval time.Duration // how often
	DiskBudget     int64         // bytes the store may take; negative: no budget

	// Blobs (see blob.go).
	BlobChunks     store.BlobChunks // where chunks go; nil: the Store
	MaxBlobSize    int64            // bytes of one blob
	BlobTTL        time.Duration    // blobs older than this are deleted; 0: MessageTTL
	BlobOwnerBytes int64            // live blob bytes of one uploader; negative: unbounded
	BlobTotalBytes int64            // live blob bytes in all; 0: DiskBudget, negative: unbounded
	BlobChunkRate  rate.Limit       // chunk calls per second per identity (paced, see blob.go)
	BlobChunkBurst int

	// DeviceListRate and DeviceListBurst pace the device lists a user
	// publishes (see devlimits.go).
	DeviceListRate  rate.Limit
	DeviceListBurst int
	// MaxRevokedDevices caps the devices one user's lists may revoke
	// (each is a row kept for ever).
	MaxRevokedDevices int

	// KeyPackage fetch limits and the low-water notice (see kpfetch.go).
	FetchRate          rate.Limit // fetches per second per requester
	FetchBurst         int
	TargetFetchRate    rate.Limit // consuming fetches per second per target
	TargetFetchBurst   int
	KeyPackageLowWater int // notify an owner left with this many packages or fewer
	// KeyPackageSuites are the MLS cipher suites the directory keeps
	// packages for (DefaultKeyPackageSuites when empty; see kpsuite.go).
	KeyPackageSuites []uint16

	// Link slots (see link.go).
	LinkTTL        time.Duration // how long a slot stays open; 0: DefaultLinkTTL
	MaxLinkSlots   int           // open slots per identity
	MaxLinkPayload int           // bytes of one box

	// Connection limits (see admission) and RPC resource bounds (see
	// RPCLimits).
	MaxConns            int           // open connections in all
	MaxAnonConnsPerIP   int           // open connections without a certificate from one IP address
	MaxConnsPerIdentity int           // per identity; past it the identity's oldest connection is closed
	IdleTimeout         time.Duration // a connection with no subscription and no message for this long is closed
	FrameTimeout        time.Duration // to receive a message once its header arrived, and to send one
	MemoryBudget        int64         // bytes of RPC messages all connections may hold together

	// RPC replaces the RPC limits that New derives from the fields above
	// (nil: derive them). A zero transport.Limits bounds nothing.
	RPC *transport.Limits

	// WithoutFanOutBatch answers fanOutBatch as unimplemented, as a node
	// older than the method does; for tests of clients' fallback.
	WithoutFanOutBatch bool
}

// Server serves NodeService to QUIC connections. It is safe for concurrent use.
type Server struct {
	cfg       Config
	log       *slog.Logger
	notifier  *notifier
	limiters  *limiters
	fetchers  *limiters      // KeyPackage fetches per requester
	targets   *limiters      // consuming KeyPackage fetches per target
	notices   *limiters      // low-water notices per target
	chunkPace *limiters      // blob chunk calls per identity
	listPace  *limiters      // device lists published per user
	reg       registry       // identities known to be registered
	revoked   revocations    // devices known to be revoked, or not
	listings  listings       // which user lists a device
	disk      *diskGuard     // nil: no budget
	fetchMu   [64]sync.Mutex // serializes fetch (drain) per recipient stripe

	admission *admission

	wg sync.WaitGroup
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: config has no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.rpcDefaults()
	setDefault(&cfg.RateLimit, DefaultRateLimit)
	setDefault(&cfg.RateBurst, DefaultRateBurst)
	setDefault(&cfg.ReceiveBatch, DefaultReceiveBatch)
	setDefault(&cfg.MaxConnsPerIP, DefaultMaxConnsPerIP)
	setDefault(&cfg.MaxConns, DefaultMaxConns)
	setDefault(&cfg.MaxAnonConnsPerIP, min(DefaultMaxAnonPerIP, cfg.MaxConnsPerIP))
	setDefault(&cfg.MaxConnsPerIdentity, DefaultMaxConnsPerID)
	if cfg.RPC == nil {
		lim := RPCLimits(cfg)
		cfg.RPC = &lim
	}
	if err := cfg.policyDefaults(); err != nil {
		return nil, err
	}
	srv := &Server{
		admission: newAdmission(cfg),
		cfg:       cfg,
		log:       cfg.Logger,
		notifier:  newNotifier(),
		limiters:  newLimiters(cfg.RateLimit, cfg.RateBurst),
		fetchers:  newLimiters(cfg.FetchRate, cfg.FetchBurst),
		targets:   newLimiters(cfg.TargetFetchRate, cfg.TargetFetchBurst),
		notices:   newLimiters(rate.Every(lowWaterEvery), 1),
		chunkPace: newLimiters(cfg.BlobChunkRate, cfg.BlobChunkBurst),
		listPace:  newLimiters(cfg.DeviceListRate, cfg.DeviceListBurst),
	}
	if cfg.DiskBudget > 0 {
		srv.disk = &diskGuard{budget: cfg.DiskBudget, store: cfg.Store}
	}
	return srv, nil
}

// policyDefaults checks and completes the registration, quota and
// KeyPackage fields.
func (cfg *Config) policyDefaults() error {
	switch cfg.Registration {
	case RegistrationNone, RegistrationOpen, RegistrationToken, RegistrationClosed:
	default:
		return fmt.Errorf("server: unknown registration policy %q", cfg.Registration)
	}
	switch {
	case cfg.PowDifficulty == 0:
		cfg.PowDifficulty = DefaultPowDifficulty
	case cfg.PowDifficulty < 0:
		cfg.PowDifficulty = 0
	case cfg.PowDifficulty > pow.MaxDifficulty:
		return fmt.Errorf("server: proof-of-work difficulty %d above %d", cfg.PowDifficulty, pow.MaxDifficulty)
	}
	setDefault(&cfg.MessageTTL, DefaultMessageTTL)
	setDefault(&cfg.ExpireInterval, DefaultExpireInterval)
	if cfg.DiskBudget == 0 {
		cfg.DiskBudget = DefaultDiskBudget
	}
	cfg.blobDefaults()
	cfg.linkDefaults()
	cfg.deviceDefaults()
	setDefault(&cfg.FetchRate, DefaultFetchRate)
	setDefault(&cfg.FetchBurst, DefaultFetchBurst)
	setDefault(&cfg.TargetFetchRate, DefaultTargetFetchRate)
	setDefault(&cfg.TargetFetchBurst, DefaultTargetFetchBurst)
	setDefault(&cfg.KeyPackageLowWater, DefaultLowWater)
	if len(cfg.KeyPackageSuites) == 0 {
		cfg.KeyPackageSuites = DefaultKeyPackageSuites
	}
	return nil
}

// Listen opens a QUIC listener on addr (host:port, port 0 for any) with the
// node's TLS configuration.
func Listen(addr string, cert tls.Certificate) (*quic.Listener, error) {
	return ListenTLS(addr, transport.ServerTLSConfig(cert))
}

// ListenOptions tunes ListenWith.
type ListenOptions struct {
	// RequirePQTLS allows only the hybrid post-quantum TLS key exchange
	// (X25519MLKEM768): a client that does not offer it fails the handshake,
	// and the refusal is logged to Logger.
	RequirePQTLS bool
	Logger       *slog.Logger
}

// ListenWith is Listen with options.
func ListenWith(addr string, cert tls.Certificate, o ListenOptions) (*quic.Listener, error) {
	conf := transport.ServerTLSConfig(cert)
	if o.RequirePQTLS {
		transport.RequireHybridKeyExchange(conf, o.Logger)
	}
	return ListenTLS(addr, conf)
}

// ListenTLS is Listen with a TLS configuration of the caller's (the node's,
// with a renewing transport.CertSource, say).
func ListenTLS(addr string, conf *tls.Config) (*quic.Listener, error) {
	ln, err := quic.ListenAddr(addr, conf, transport.QUICConfig())
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve accepts connections on ln and serves each until ctx is done; then it
// closes every connection, waits for them, and returns nil. It returns an
// error if accepting fails for another reason. The caller closes ln.
//
// When the store is a store.Notifier (shared by several nodes), Serve also
// listens for the messages other nodes store and wakes this node's push
// subscriptions for them.
func (s *Server) Serve(ctx context.Context, ln *quic.Listener) error {
	defer s.wg.Wait()
	ectx, ecancel := context.WithCancel(ctx)
	defer ecancel()
	s.wg.Go(func() { s.expireLoop(ectx) })
	if n, ok := s.cfg.Store.(store.Notifier); ok {
		nctx, ncancel := context.WithCancel(ctx)
		defer ncancel()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := n.Notifications(nctx, s.notifier.wake); err != nil && nctx.Err() == nil {
				s.log.Error("cross-node notifications stopped; pushes wait for this node's own writes", "err", err)
			}
		}()
	}
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, quic.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		e, refused, evicted, kinds := s.admission.admit(conn)
		for i, old := range evicted {
			s.cfg.Metrics.refused(kinds[i])
			s.log.Info("closed a connection for a newer one", "remote", old.conn.RemoteAddr().String(), "why", kinds[i])
			old.conn.CloseWithError(closeTooManyConns, fail(nodecp.ErrorCode_limit,
				"connect: closed for a newer connection (%s)", kinds[i]).Error())
		}
		if refused != "" {
			s.cfg.Metrics.refused(refused)
			s.log.Warn("refused a connection", "remote", conn.RemoteAddr().String(), "why", refused)
			conn.CloseWithError(closeTooManyConns, fail(nodecp.ErrorCode_limit,
				"connect: too many connections (%s); close one first or retry later", refused).Error())
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.admission.leave(e)
			s.ServeConn(ctx, conn)
		}()
	}
}

// closeTooManyConns is the QUIC application error code of a connection
// refused or closed by the connection limits, and closeRPCLimit of one
// closed for passing an RPC limit; the reason text carries the node error.
const (
	closeTooManyConns quic.ApplicationErrorCode = 2
	closeRPCLimit     quic.ApplicationErrorCode = 3
)

func setDefault[T int | int64 | time.Duration | rate.Limit](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// rpcDefaults gives the zero fields RPCLimits derives from their defaults.
func (cfg *Config) rpcDefaults() {
	setDefault(&cfg.MaxPayloadSize, DefaultMaxPayloadSize)
	setDefault(&cfg.MaxKeyPackageSize, DefaultMaxKeyPackageSize)
	setDefault(&cfg.MaxRecipients, DefaultMaxRecipients)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.FrameTimeout, DefaultFrameTimeout)
	setDefault(&cfg.MemoryBudget, DefaultMemoryBudget)
}

// RPCLimits derives the RPC resource bounds of a connection from cfg (its
// zero fields taking the defaults of New).
//
// The largest legal message is a submitCommit: a commit and a Welcome of
// MaxPayloadSize each, a client message id, and MaxRecipients keys (32
// bytes each plus an 8-byte list pointer), with room for the RPC framing;
// a KeyPackage upload is smaller. A connection may hold a few replies of
// maxBatchBytes (capnp keeps each until the client's Finish, in an arena
// that may be a quarter larger) and two messages of that largest size.
func RPCLimits(cfg Config) transport.Limits {
	cfg.rpcDefaults()
	frame := uint64(max(2*cfg.MaxPayloadSize+maxClientMsgIDSize, cfg.MaxKeyPackageSize, store.BlobChunkSize)+40*cfg.MaxRecipients) + 64<<10
	held := int64(3*maxBatchBytes) + 2*int64(frame) + 2<<20
	return transport.Limits{
		MaxFrame:          frame,
		FrameTimeout:      cfg.FrameTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxAnswers:        maxOpenCalls,
		MaxImports:        maxSubscriptions + 16,
		MaxCapsPerMessage: 4,
		MaxHeld:           held,
		Budget:            transport.NewBudget(cfg.MemoryBudget),
	}
}

// maxOpenCalls bounds the calls one connection has open (not finished) at
// once; a client makes a few, one per concurrent operation.
const maxOpenCalls = 64

// rpcErrors logs what the RPC layer reports about a connection.
type rpcErrors struct{ log *slog.Logger }

func (r rpcErrors) ReportError(err error) { r.log.Debug("rpc error", "err", err) }

// ServeConn serves one connection until the client leaves, the connection
// fails, or ctx is done.
func (s *Server) ServeConn(ctx context.Context, conn *quic.Conn) {
	identity := transport.PeerIdentity(conn.ConnectionState().TLS)
	log := s.log.With("remote", conn.RemoteAddr().String())
	if identity != nil {
		log = log.With("identity", fmt.Sprintf("%x", []byte(identity)))
	}
	s.cfg.Metrics.connectionDelta(1)
	defer s.cfg.Metrics.connectionDelta(-1)

	actx, cancel := context.WithTimeout(ctx, streamAcceptTimeout)
	stream, err := conn.AcceptStream(actx)
	cancel()
	if err != nil {
		log.Debug("no RPC stream", "err", err)
		conn.CloseWithError(1, "no RPC stream")
		return
	}
	log.Debug("connection open")

	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	sess := &session{srv: s, identity: identity, log: log, ctx: sctx}
	if identity == nil {
		sess.limiter = rate.NewLimiter(s.cfg.RateLimit, s.cfg.RateBurst)
	} else {
		sess.limiter = s.limiters.get(identity)
	}
	lim := *s.cfg.RPC
	if s.cfg.Metrics != nil {
		lim.OnHeld = s.cfg.Metrics.heldDelta
	}
	rc, rt := transport.NewRPCConn(stream, lim, capnp.Client(nodecp.NodeService_ServerToClient(sess)), rpcErrors{log})

	select {
	case <-rc.Done():
	case <-conn.Context().Done():
	case <-ctx.Done():
	}
	scancel()
	if le := rt.Err(); le != nil {
		// Say why before the RPC layer's own close resets the stream.
		s.cfg.Metrics.refused(le.Kind)
		log.Warn("closed a connection past an RPC limit", "why", le.Kind, "detail", le.Detail)
		conn.CloseWithError(closeRPCLimit, fail(nodecp.ErrorCode_limit, "connection closed: %s", le.Detail).Error())
	}
	rc.Close()
	sess.wait()
	_, peak := rt.Held()
	s.cfg.Metrics.connectionPeak(peak)
	conn.CloseWithError(0, "bye")
	log.Debug("connection closed")
}
