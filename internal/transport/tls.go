package transport

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ALPN is the application protocol a node speaks: Cap'n Proto RPC on the
// first bidirectional QUIC stream.
const ALPN = "qpq/1"

// ServerTLSConfig is the node's TLS configuration: TLS 1.3 only, our ALPN,
// and an optional client certificate that must be a self-signed Ed25519 one.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPN},
		ClientAuth:   tls.RequestClientCert,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 {
				return nil // anonymous: may only ping
			}
			if len(rawCerts) != 1 {
				return fmt.Errorf("%w: %d client certificates, want one self-signed", ErrBadCertificate, len(rawCerts))
			}
			_, err := IdentityFromCertificate(rawCerts[0])
			return err
		},
	}
}

// PeerIdentity returns the Ed25519 identity the client proved in the
// handshake, or nil for an anonymous connection.
func PeerIdentity(cs tls.ConnectionState) ed25519.PublicKey {
	if len(cs.PeerCertificates) != 1 {
		return nil
	}
	pub, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != IdentityKeySize {
		return nil
	}
	return pub
}

// VerifyServerFunc decides whether to trust a node's certificate, given its
// DER bytes. It is called during every handshake.
type VerifyServerFunc func(certDER []byte) error

// ClientTLSConfig is a client's TLS configuration: TLS 1.3 only, our ALPN,
// the identity certificate if there is one (nil: anonymous), and verify to
// accept the node's certificate in place of CA validation.
func ClientTLSConfig(identity *tls.Certificate, verify VerifyServerFunc) (*tls.Config, error) {
	if verify == nil {
		return nil, errors.New("transport: client needs a way to verify the node certificate")
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		NextProtos: []string{ALPN},
		ServerName: ServerName,
		// The node's certificate is self-signed: it is pinned by verify
		// below instead of validated against a CA.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 {
				return fmt.Errorf("%w: node sent no certificate", ErrBadCertificate)
			}
			if _, err := VerifySelfSigned(rawCerts[0]); err != nil {
				return err
			}
			return verify(rawCerts[0])
		},
	}
	if identity != nil {
		conf.Certificates = []tls.Certificate{*identity}
	}
	return conf, nil
}
