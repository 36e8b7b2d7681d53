package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"github.com/quic-go/quic-go"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/schemas/auth"
	"github.com/quicproquo/quicproquo/schemas/delivery"
	"github.com/quicproquo/quicproquo/schemas/envelope"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// maxReplySize bounds one message from the node (capnp's own traversal
// limit is 64 MiB).
const maxReplySize = 64 << 20

// Config configures Dial. Exactly one of PinnedCert, PinnedFingerprint and
// VerifyServer must be set.
type Config struct {
	// Identity is the client's Ed25519 identity key; nil connects
	// anonymously, which allows only Ping.
	Identity ed25519.PrivateKey

	// PinnedCert is the node's certificate (DER); its public key is pinned,
	// so the node's renewals of it with the same key are accepted.
	PinnedCert []byte
	// PinnedFingerprint is the SHA-256 of the node's public key
	// (transport.KeyFingerprint, logged by qpnode as key_sha256), or of
	// its certificate (32 bytes); only the first survives a renewal.
	PinnedFingerprint []byte
	// VerifyServer decides on the node's certificate (DER), e.g. TOFUFile.
	// Dial returns its error wrapped (errors.Is finds ErrServerCertChanged).
	VerifyServer func(certDER []byte) error

	// RequirePQTLS allows only the hybrid post-quantum TLS key exchange
	// (X25519MLKEM768); a node without it is refused with an error matching
	// transport.ErrClassicalKeyExchange. Without it the hybrid is still
	// offered first and used whenever the node has it.
	RequirePQTLS bool

	Logger *slog.Logger // nil: discard
}

// Client is a connection to a node. Its methods are safe for concurrent use.
type Client struct {
	log      *slog.Logger
	identity ed25519.PublicKey
	conn     *quic.Conn
	rpc      *rpc.Conn
	node     nodecp.NodeService
	certDER  []byte

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
	closing   chan struct{} // closed when Close starts
}

// Envelope is one message of a queue.
type Envelope struct {
	Seq         uint64    // sequence number in the recipient's queue
	Sender      []byte    // identity key of the sender's connection
	ClientMsgID []byte    // the sender's id for idempotent enqueue (may be empty)
	Payload     []byte    // opaque bytes
	EnqueuedAt  time.Time // when the node stored it
	Sequenced   bool      // in its group's order (an accepted commit, its Welcome, a fanned-out message), not a direct enqueue
	GroupSeq    uint64    // its number in the group's order, the same for every member (0: a direct enqueue, or unknown)
}

// KeyPackageCount is what an identity has left in the node's directory.
type KeyPackageCount struct {
	Remaining  int  // consumable packages
	LastResort bool // whether a last-resort package is present
}

// PingResult is the node's answer to Ping.
type PingResult struct {
	ServerTime time.Time
	Identity   []byte // the identity the node bound this connection to; nil if anonymous
}

func (cfg *Config) verifier() (transport.VerifyServerFunc, error) {
	n := 0
	for _, set := range []bool{cfg.PinnedCert != nil, cfg.PinnedFingerprint != nil, cfg.VerifyServer != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("client: config needs exactly one of PinnedCert, PinnedFingerprint and VerifyServer")
	}
	switch {
	case cfg.PinnedCert != nil:
		if _, err := transport.KeyFingerprint(cfg.PinnedCert); err != nil {
			return nil, fmt.Errorf("client: PinnedCert: %w", err)
		}
		return pinKey(bytes.Clone(cfg.PinnedCert)), nil
	case cfg.PinnedFingerprint != nil:
		if len(cfg.PinnedFingerprint) != sha256.Size {
			return nil, fmt.Errorf("client: PinnedFingerprint has %d bytes, want %d", len(cfg.PinnedFingerprint), sha256.Size)
		}
		return pinFingerprint(bytes.Clone(cfg.PinnedFingerprint)), nil
	default:
		return cfg.VerifyServer, nil
	}
}

// Dial connects to the node at addr (host:port) and bootstraps NodeService.
func Dial(ctx context.Context, addr string, cfg Config) (*Client, error) {
	verify, err := cfg.verifier()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cert *tls.Certificate
	var identity ed25519.PublicKey
	if cfg.Identity != nil {
		c, err := transport.ClientCertificate(cfg.Identity)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		cert = &c
		identity = cfg.Identity.Public().(ed25519.PublicKey)
	}

	// The TLS stack reports a refused certificate as a generic alert; keep
	// the verifier's own error to return it.
	var verifyMu sync.Mutex
	var verifyErr error
	var serverCert []byte
	tlsConf, err := transport.ClientTLSConfig(cert, func(der []byte) error {
		err := verify(der)
		verifyMu.Lock()
		defer verifyMu.Unlock()
		verifyErr = err
		serverCert = bytes.Clone(der)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.RequirePQTLS {
		transport.RequireHybridKeyExchange(tlsConf, nil)
	}
	conn, err := quic.DialAddr(ctx, addr, tlsConf, transport.QUICConfig())
	if err != nil {
		verifyMu.Lock()
		defer verifyMu.Unlock()
		if verifyErr != nil {
			return nil, fmt.Errorf("client: dial %s: %w", addr, verifyErr)
		}
		if cfg.RequirePQTLS && transport.IsKeyExchangeRefusal(err) {
			return nil, fmt.Errorf("client: dial %s: %w (%v)", addr, transport.ErrClassicalKeyExchange, err)
		}
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		if cause := remoteClose(conn); cause != nil {
			err = cause
		}
		conn.CloseWithError(1, "no stream")
		return nil, fmt.Errorf("client: %w", callError("open stream to "+addr, err))
	}
	rc, _ := transport.NewRPCConn(stream, transport.Limits{MaxFrame: maxReplySize}, capnp.Client{}, rpcErrors{log})
	c := &Client{
		log:      log,
		identity: identity,
		conn:     conn,
		rpc:      rc,
		node:     nodecp.NodeService(rc.Bootstrap(ctx)),
		certDER:  serverCert,
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
	}
	err = c.node.Resolve(ctx)
	if err == nil {
		// Resolve succeeds when the bootstrap resolved to an error (the
		// node closed the connection, say); the error is the brand.
		if berr, ok := capnp.Client(c.node).State().Brand.Value.(error); ok {
			err = berr
		}
	}
	if err != nil {
		if cause := remoteClose(conn); cause != nil {
			err = cause
		}
		c.Close()
		// A node that refuses the connection (too many from this address)
		// says why in the close reason: a *NodeError.
		return nil, fmt.Errorf("client: %w", callError("bootstrap "+addr, err))
	}
	c.node = nodecp.NodeService(bounded(capnp.Client(c.node), c.closing))
	go func() {
		select {
		case <-rc.Done():
		case <-conn.Context().Done():
		}
		c.Close()
	}()
	return c, nil
}

// remoteClose returns the node's reason when it has closed conn, else nil.
// It is called when the connection failed; the close may be a moment
// behind the failure it caused.
func remoteClose(conn *quic.Conn) error {
	select {
	case <-conn.Context().Done():
	case <-time.After(200 * time.Millisecond):
		return nil
	}
	var ae *quic.ApplicationError
	if cause := context.Cause(conn.Context()); errors.As(cause, &ae) && ae.Remote {
		return cause
	}
	return nil
}

type rpcErrors struct{ log *slog.Logger }

func (r rpcErrors) ReportError(err error) { r.log.Debug("rpc error", "err", err) }

// Identity is the client's identity key (nil if anonymous).
func (c *Client) Identity() ed25519.PublicKey { return c.identity }

// ServerCertificate is the certificate (DER) the node presented.
func (c *Client) ServerCertificate() []byte { return c.certDER }

// KeyExchange returns the TLS key exchange group of the connection
// (tls.X25519MLKEM768 when both sides are post-quantum).
func (c *Client) KeyExchange() tls.CurveID { return c.conn.ConnectionState().TLS.CurveID }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close ends the connection. Calls in flight fail.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.node.Release()
		c.closeErr = c.rpc.Close()
		c.conn.CloseWithError(0, "bye")
		close(c.done)
		if errors.Is(c.closeErr, rpc.ErrConnClosed) {
			c.closeErr = nil
		}
	})
	return c.closeErr
}

// Ping asks the node for its time and for the identity it sees.
func (c *Client) Ping(ctx context.Context) (PingResult, error) {
	fut, release := c.node.Ping(ctx, nil)
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return PingResult{}, callError("ping", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return PingResult{}, callError("ping", err)
	}
	id, err := res.IdentityKey()
	if err != nil {
		return PingResult{}, callError("ping", err)
	}
	out := PingResult{ServerTime: time.Unix(0, res.ServerTimeUnixNano())}
	if len(id) > 0 {
		out.Identity = bytes.Clone(id)
	}
	return out, nil
}

// UploadKeyPackage stores an RFC 9420 KeyPackage for identity, which must be
// this client's own and the package's BasicCredential identity. A lastResort
// package replaces the previous one and is never consumed. It returns the
// package's SHA-256 fingerprint.
func (c *Client) UploadKeyPackage(ctx context.Context, identity, pkg []byte, lastResort bool) ([32]byte, error) {
	fut, release := c.node.UploadKeyPackage(ctx, func(p auth.AuthService_uploadKeyPackage_Params) error {
		if err := p.SetIdentityKey(identity); err != nil {
			return err
		}
		p.SetLastResort(lastResort)
		return p.SetPackage(pkg)
	})
	var fp [32]byte
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return fp, callError("upload key package", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return fp, callError("upload key package", err)
	}
	b, err := res.Fingerprint()
	if err != nil {
		return fp, callError("upload key package", err)
	}
	if len(b) != len(fp) {
		return fp, fmt.Errorf("upload key package: node returned a %d-byte fingerprint", len(b))
	}
	copy(fp[:], b)
	return fp, nil
}

// FetchKeyPackage takes one KeyPackage of identity in cipher suite 1. Each
// is handed out once; when none is left the last-resort one is returned,
// and ErrNoKeyPackage when there is none of either.
func (c *Client) FetchKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	return c.FetchKeyPackageSuite(ctx, identity, 1)
}

// FetchKeyPackageSuite is FetchKeyPackage for the MLS cipher suite suite;
// ErrNoKeyPackage also when the node keeps no packages of that suite.
func (c *Client) FetchKeyPackageSuite(ctx context.Context, identity []byte, suite uint16) ([]byte, error) {
	return c.fetchKeyPackage(ctx, identity, suite, false)
}

// PeekKeyPackage returns identity's last-resort KeyPackage in cipher suite
// 1 and consumes nothing: a look at the identity's package (its
// credential, lifetime, capabilities), not one to invite with. It spends
// this client's fetch budget but none of identity's; ErrNoKeyPackage when
// identity has no last-resort package, ErrPeekUnsupported from a node that
// does not know peeks (and so consumed one).
func (c *Client) PeekKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	return c.fetchKeyPackage(ctx, identity, 1, true)
}

func (c *Client) fetchKeyPackage(ctx context.Context, identity []byte, suite uint16, peek bool) ([]byte, error) {
	fut, release := c.node.FetchKeyPackage(ctx, func(p auth.AuthService_fetchKeyPackage_Params) error {
		p.SetCipherSuite(suite)
		p.SetPeek(peek)
		return p.SetIdentityKey(identity)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, callError("fetch key package", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, callError("fetch key package", err)
	}
	pkg, err := res.Package()
	if err != nil {
		return nil, callError("fetch key package", err)
	}
	if peek && !res.Peeked() {
		return nil, fmt.Errorf("fetch key package: %w (it handed out a KeyPackage as for a fetch)", ErrPeekUnsupported)
	}
	return bytes.Clone(pkg), nil
}

// KeyPackageCount reports what this client's identity has left in cipher
// suite 1.
func (c *Client) KeyPackageCount(ctx context.Context, identity []byte) (KeyPackageCount, error) {
	return c.KeyPackageCountSuite(ctx, identity, 1)
}

// KeyPackageCountSuite is KeyPackageCount for the MLS cipher suite suite.
func (c *Client) KeyPackageCountSuite(ctx context.Context, identity []byte, suite uint16) (KeyPackageCount, error) {
	fut, release := c.node.KeyPackageCount(ctx, func(p auth.AuthService_keyPackageCount_Params) error {
		p.SetCipherSuite(suite)
		return p.SetIdentityKey(identity)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return KeyPackageCount{}, callError("key package count", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return KeyPackageCount{}, callError("key package count", err)
	}
	return KeyPackageCount{Remaining: int(res.Remaining()), LastResort: res.LastResort()}, nil
}

// Enqueue appends payload to recipient's queue and returns its sequence
// number once the node has stored it durably. A non-empty clientMsgID makes
// it idempotent: a repeat returns the original seq and duplicate = true.
func (c *Client) Enqueue(ctx context.Context, recipient, payload, clientMsgID []byte) (seq uint64, duplicate bool, err error) {
	fut, release := c.node.Enqueue(ctx, func(p delivery.DeliveryService_enqueue_Params) error {
		if err := p.SetRecipientKey(recipient); err != nil {
			return err
		}
		if err := p.SetPayload(payload); err != nil {
			return err
		}
		if len(clientMsgID) == 0 {
			return nil
		}
		return p.SetClientMsgId(clientMsgID)
	})
	release, err = c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return 0, false, callError("enqueue", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return 0, false, callError("enqueue", err)
	}
	return res.Seq(), res.Duplicate(), nil
}

// Fetch takes the queued payloads of recipient (this client's own identity)
// in order and deletes them. One call returns a bounded batch; call again
// until it returns none.
func (c *Client) Fetch(ctx context.Context, recipient []byte) ([][]byte, error) {
	fut, release := c.node.Fetch(ctx, func(p delivery.DeliveryService_fetch_Params) error {
		return p.SetRecipientKey(recipient)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, callError("fetch", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, callError("fetch", err)
	}
	list, err := res.Payloads()
	if err != nil {
		return nil, callError("fetch", err)
	}
	out := make([][]byte, list.Len())
	for i := range out {
		b, err := list.At(i)
		if err != nil {
			return nil, callError("fetch", err)
		}
		out[i] = bytes.Clone(b)
	}
	return out, nil
}

// Receive returns up to limit messages of recipient (this client's own
// identity) with Seq > afterSeq, in order, without deleting them. limit 0
// takes the node's default batch.
func (c *Client) Receive(ctx context.Context, recipient []byte, afterSeq uint64, limit int) ([]Envelope, error) {
	if limit < 0 {
		return nil, fmt.Errorf("receive: %w: negative limit", ErrInvalidArgument)
	}
	fut, release := c.node.Receive(ctx, func(p delivery.DeliveryService_receive_Params) error {
		p.SetAfterSeq(afterSeq)
		p.SetLimit(uint32(min(limit, 1<<31)))
		return p.SetRecipientKey(recipient)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, callError("receive", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, callError("receive", err)
	}
	list, err := res.Envelopes()
	if err != nil {
		return nil, callError("receive", err)
	}
	out, err := envelopes(list)
	if err != nil {
		return nil, callError("receive", err)
	}
	return out, nil
}

// envelopes copies a capnp list of envelopes.
func envelopes(list envelope.Envelope_List) ([]Envelope, error) {
	out := make([]Envelope, list.Len())
	for i := range out {
		e := list.At(i)
		sender, err := e.Sender()
		if err != nil {
			return nil, err
		}
		id, err := e.ClientMsgId()
		if err != nil {
			return nil, err
		}
		payload, err := e.Payload()
		if err != nil {
			return nil, err
		}
		out[i] = Envelope{
			Seq:        e.Seq(),
			Sender:     bytes.Clone(sender),
			Payload:    bytes.Clone(payload),
			EnqueuedAt: time.Unix(0, e.EnqueuedAtUnixNano()),
			Sequenced:  e.Sequenced(),
			GroupSeq:   e.GroupSeq(),
		}
		if len(id) > 0 {
			out[i].ClientMsgID = bytes.Clone(id)
		}
	}
	return out, nil
}

// Ack deletes recipient's messages with Seq <= upToSeq and returns how many
// the node deleted.
func (c *Client) Ack(ctx context.Context, recipient []byte, upToSeq uint64) (int, error) {
	fut, release := c.node.Ack(ctx, func(p delivery.DeliveryService_ack_Params) error {
		p.SetUpToSeq(upToSeq)
		return p.SetRecipientKey(recipient)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return 0, callError("ack", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return 0, callError("ack", err)
	}
	return int(res.Deleted()), nil
}

// wait is transport.Await that also ends when the client closes: calls a
// DeliverFunc makes while Close waits for it return ErrClosed.
func (c *Client) wait(ctx context.Context, fut *capnp.Future, release capnp.ReleaseFunc) (capnp.ReleaseFunc, error) {
	return transport.Await(ctx, fut, release, c.closing)
}
