package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
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
	maxBatchBytes            = 16 << 20 // bound on the payload bytes of one reply or push
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

	// KeyPackage fetch limits and the low-water notice (see kpfetch.go).
	FetchRate          rate.Limit // fetches per second per requester
	FetchBurst         int
	TargetFetchRate    rate.Limit // consuming fetches per second per target
	TargetFetchBurst   int
	KeyPackageLowWater int // notify an owner left with this many packages or fewer
	// KeyPackageSuites are the MLS cipher suites the directory keeps
	// packages for (DefaultKeyPackageSuites when empty; see kpsuite.go).
	KeyPackageSuites []uint16
}

// Server serves NodeService to QUIC connections. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	notifier *notifier
	limiters *limiters
	fetchers *limiters      // KeyPackage fetches per requester
	targets  *limiters      // consuming KeyPackage fetches per target
	notices  *limiters      // low-water notices per target
	reg      registry       // identities known to be registered
	disk     *diskGuard     // nil: no budget
	fetchMu  [64]sync.Mutex // serializes fetch (drain) per recipient stripe

	connsMu sync.Mutex
	conns   map[netip.Addr]int // open connections per remote address

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
	if cfg.MaxPayloadSize <= 0 {
		cfg.MaxPayloadSize = DefaultMaxPayloadSize
	}
	if cfg.MaxKeyPackageSize <= 0 {
		cfg.MaxKeyPackageSize = DefaultMaxKeyPackageSize
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.ReceiveBatch <= 0 {
		cfg.ReceiveBatch = DefaultReceiveBatch
	}
	if cfg.MaxConnsPerIP <= 0 {
		cfg.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if err := cfg.policyDefaults(); err != nil {
		return nil, err
	}
	srv := &Server{
		conns:    make(map[netip.Addr]int),
		cfg:      cfg,
		log:      cfg.Logger,
		notifier: newNotifier(),
		limiters: newLimiters(cfg.RateLimit, cfg.RateBurst),
		fetchers: newLimiters(cfg.FetchRate, cfg.FetchBurst),
		targets:  newLimiters(cfg.TargetFetchRate, cfg.TargetFetchBurst),
		notices:  newLimiters(rate.Every(lowWaterEvery), 1),
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
	if cfg.MessageTTL <= 0 {
		cfg.MessageTTL = DefaultMessageTTL
	}
	if cfg.ExpireInterval <= 0 {
		cfg.ExpireInterval = DefaultExpireInterval
	}
	if cfg.DiskBudget == 0 {
		cfg.DiskBudget = DefaultDiskBudget
	}
	if cfg.FetchRate <= 0 {
		cfg.FetchRate = DefaultFetchRate
	}
	if cfg.FetchBurst <= 0 {
		cfg.FetchBurst = DefaultFetchBurst
	}
	if cfg.TargetFetchRate <= 0 {
		cfg.TargetFetchRate = DefaultTargetFetchRate
	}
	if cfg.TargetFetchBurst <= 0 {
		cfg.TargetFetchBurst = DefaultTargetFetchBurst
	}
	if cfg.KeyPackageLowWater <= 0 {
		cfg.KeyPackageLowWater = DefaultLowWater
	}
	if len(cfg.KeyPackageSuites) == 0 {
		cfg.KeyPackageSuites = DefaultKeyPackageSuites
	}
	return nil
}

// Listen opens a QUIC listener on addr (host:port, port 0 for any) with the
// node's TLS configuration.
func Listen(addr string, cert tls.Certificate) (*quic.Listener, error) {
	return ListenWith(addr, cert, ListenOptions{})
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
		ip, ok := s.admit(conn)
		if !ok {
			s.log.Warn("refused a connection: too many from its address", "remote", conn.RemoteAddr().String(), "max", s.cfg.MaxConnsPerIP)
			conn.CloseWithError(closeTooManyConns, fail(nodecp.ErrorCode_limit,
				"connect: %d connections from your address are open; close one first", s.cfg.MaxConnsPerIP).Error())
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.leave(ip)
			s.ServeConn(ctx, conn)
		}()
	}
}

// closeTooManyConns is the QUIC application error code of a connection
// refused by the per-address cap; the reason text carries the node error.
const closeTooManyConns quic.ApplicationErrorCode = 2

// admit counts conn against its remote address's cap.
func (s *Server) admit(conn *quic.Conn) (netip.Addr, bool) {
	var ip netip.Addr
	if ua, ok := conn.RemoteAddr().(*net.UDPAddr); ok {
		ip = ua.AddrPort().Addr().Unmap()
	}
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.conns[ip] >= s.cfg.MaxConnsPerIP {
		return ip, false
	}
	s.conns[ip]++
	return ip, true
}

// leave uncounts a connection admitted for ip.
func (s *Server) leave(ip netip.Addr) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.conns[ip]--; s.conns[ip] <= 0 {
		delete(s.conns, ip)
	}
}

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
	// A request carries at most two payloads (a commit and its Welcome) or
	// one KeyPackage, and up to MaxRecipients keys (40 bytes each with their
	// list pointers); leave room for framing and several in flight.
	maxMsg := uint64(4*max(2*s.cfg.MaxPayloadSize, s.cfg.MaxKeyPackageSize) + 2*40*s.cfg.MaxRecipients + 1<<20)
	rc := transport.NewRPCConn(stream, maxMsg, capnp.Client(nodecp.NodeService_ServerToClient(sess)), rpcErrors{log})

	select {
	case <-rc.Done():
	case <-conn.Context().Done():
	case <-ctx.Done():
	}
	scancel()
	rc.Close()
	sess.wait()
	conn.CloseWithError(0, "bye")
	log.Debug("connection closed")
}
