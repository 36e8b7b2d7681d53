package transport

// Post-quantum key exchange. A recorded TLS session whose key exchange is
// classical (X25519 alone) can be decrypted once a quantum computer exists;
// the hybrid X25519MLKEM768 group of crypto/tls (ML-KEM-768 and X25519,
// draft-ietf-tls-ecdhe-mlkem) is safe against that as long as either half
// holds. Go offers and prefers it by default, so two parts of ours always
// agree on it; RequireHybridKeyExchange removes the classical groups, so a
// peer that does not offer the hybrid fails the handshake instead of
// falling back. The node logs such a refusal with the groups the client
// offered; a client that required the hybrid gets ErrClassicalKeyExchange.

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"slices"

	"github.com/quic-go/quic-go"
)

// HybridKeyExchange is the key exchange group RequireHybridKeyExchange allows.
const HybridKeyExchange = tls.X25519MLKEM768

// ErrClassicalKeyExchange is the error of a handshake that required the
// hybrid post-quantum key exchange with a peer that does not offer it.
var ErrClassicalKeyExchange = errors.New("transport: the peer offers no hybrid post-quantum TLS key exchange (X25519MLKEM768)")

// RequireHybridKeyExchange restricts conf to HybridKeyExchange. On a server
// configuration, a client hello without it is logged to log (if not nil)
// before the handshake fails.
func RequireHybridKeyExchange(conf *tls.Config, log *slog.Logger) {
	conf.CurvePreferences = []tls.CurveID{HybridKeyExchange}
	if log == nil {
		return
	}
	conf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if !slices.Contains(hello.SupportedCurves, HybridKeyExchange) {
			groups := make([]string, len(hello.SupportedCurves))
			for i, c := range hello.SupportedCurves {
				groups[i] = c.String()
			}
			remote := ""
			if hello.Conn != nil {
				remote = hello.Conn.RemoteAddr().String()
			}
			log.Warn("refusing a client without hybrid post-quantum TLS key exchange",
				"remote", remote, "offered", groups, "required", HybridKeyExchange.String())
		}
		return nil, nil // keep conf: the handshake fails for want of a common group
	}
}

// IsKeyExchangeRefusal reports whether err is a QUIC handshake that failed
// with the TLS handshake_failure alert (40), as when the two sides have no
// key exchange group in common.
func IsKeyExchangeRefusal(err error) bool {
	var te *quic.TransportError
	return errors.As(err, &te) && te.ErrorCode == quic.TransportErrorCode(0x100+40)
}
