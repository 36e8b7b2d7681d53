package server

import (
	"crypto"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"

	"github.com/quic-go/quic-go"

	"github.com/quicproquo/quicproquo/internal/transport"
)

// A node killed without closing its connections leaves its clients
// waiting for the QUIC idle timeout (15 s) before they redial. A node
// restarted on the same address can tell them at once: it answers a
// packet of a connection it does not know with a stateless reset (RFC
// 9000, section 10.3), which only the holder of the stateless reset key
// that issued the connection's IDs can make. The node derives that key
// from its TLS private key, which certificate renewals keep, so each run
// of the node holds the key of the runs before it. The key stays as
// secret as the TLS key: whoever holds it can end the node's connections.

// resetKeyInfo is the HKDF info of the stateless reset key.
const resetKeyInfo = "quicproquo node: QUIC stateless reset key"

// StatelessResetKey derives the node's QUIC stateless reset key from its
// TLS private key.
func StatelessResetKey(key crypto.PrivateKey) (*quic.StatelessResetKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("server: stateless reset key: %w", err)
	}
	defer clear(der)
	okm, err := hkdf.Key(sha256.New, der, nil, resetKeyInfo, len(quic.StatelessResetKey{}))
	if err != nil {
		return nil, fmt.Errorf("server: stateless reset key: %w", err)
	}
	defer clear(okm)
	var k quic.StatelessResetKey
	copy(k[:], okm)
	return &k, nil
}

// ListenReset is ListenTLS on a QUIC transport of its own that resets
// the connections of earlier runs of the node with resetKey (see
// StatelessResetKey). Close the listener, then the returned transport.
func ListenReset(addr string, conf *tls.Config, resetKey *quic.StatelessResetKey) (*quic.Listener, io.Closer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listen on %s: %w", addr, err)
	}
	uc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listen on %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: uc, StatelessResetKey: resetKey}
	ln, err := tr.Listen(conf, transport.QUICConfig())
	if err != nil {
		tr.Close()
		uc.Close()
		return nil, nil, fmt.Errorf("server: listen on %s: %w", addr, err)
	}
	return ln, closers{tr, uc}, nil
}

// closers closes each in turn and returns the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
