// Package transport holds what the node and its clients share below the RPC
// layer: the TLS 1.3 configurations with our ALPN, the self-signed
// certificates (the node's, and the one that carries a client's Ed25519
// identity key), certificate pinning, and the adapter that carries a Cap'n
// Proto RPC connection over one bidirectional QUIC stream.
//
// A node's certificate is self-signed and stored as two DER files (the
// certificate and a PKCS #8 key) in its data directory; LoadOrCreateServerCert
// writes them on first start. Clients pin it by its SHA-256 fingerprint
// (CertFingerprint) rather than trusting a CA.
//
// A client proves its identity with a self-signed certificate made from its
// Ed25519 identity key (ClientCertificate). The node asks for it with
// tls.RequestClientCert, checks the self-signature (VerifySelfSigned) and binds
// the connection to the key (PeerIdentity). A connection without a client
// certificate is anonymous.
package transport
