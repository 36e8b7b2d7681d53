// Package transport holds what the node and its clients share below the RPC
// layer: the TLS 1.3 configurations with our ALPN, the self-signed
// certificates (the node's, and the one that carries a client's Ed25519
// identity key), and the Cap'n Proto RPC transport that carries a
// connection over one bidirectional QUIC stream within resource limits.
//
// A node's certificate is self-signed and stored as two DER files (the
// certificate and a PKCS #8 key) in its data directory; LoadOrCreateServerCert
// writes them on first start. It is valid for CertLifetime (a year); the node
// renews it with the same key RenewBefore its end (RenewServerCert at start,
// CertSource while it serves). Clients pin the node's public key
// (KeyFingerprint, SameKey) rather than trusting a CA or the certificate's
// bytes, so a renewal changes nothing for them.
//
// A client proves its identity with a self-signed certificate made from its
// Ed25519 identity key (ClientCertificate). The node asks for it with
// tls.RequestClientCert, checks the self-signature (VerifySelfSigned) and binds
// the connection to the key (PeerIdentity). A connection without a client
// certificate is anonymous.
//
// RPCTransport is capnp-go's rpc.Transport for the stream framing, with the
// bounds capnp-go lacks (Limits): the size of a message and the time to
// receive it, the calls a peer keeps open, the capabilities it sends, and
// the bytes of all messages a connection holds, against its own bound and a
// Budget shared by all connections. Past one, the connection ends with a
// *LimitError (errors.Is ErrLimit) that names it.
package transport
