// Package client is the typed Go client of a quicproquo node.
//
// Dial opens a QUIC connection with TLS 1.3 and the node's ALPN, presents
// the caller's Ed25519 identity as a self-signed client certificate (or none:
// an anonymous client may only Ping), checks the node's certificate against a
// pin, and bootstraps the NodeService capability on one stream:
//
//	c, err := client.Dial(ctx, "node.example:4201", client.Config{
//		Identity: priv,                      // ed25519.PrivateKey
//		VerifyServer: client.TOFUFile(path), // or PinnedCert / PinnedFingerprint
//		Logger: logger,
//	})
//	defer c.Close()
//	seq, _, err := c.Enqueue(ctx, peerKey, ciphertext, msgID)
//
// # Pinning
//
// Nodes use self-signed certificates. Config names exactly one way to trust
// one: a pinned certificate (DER), a pinned SHA-256 fingerprint, or a
// VerifyServer callback such as TOFUFile (trust on first use, remembered in a
// file). A certificate other than the pinned one fails the dial with
// ErrServerCertChanged, whose message says how to re-pin.
//
// # Errors
//
// Calls the node refuses return an error that matches (errors.Is) one of the
// sentinels ErrUnauthorized, ErrNoKeyPackage, ErrTooLarge, ErrLimit,
// ErrRateLimited, ErrInvalidArgument, ErrStaleEpoch or ErrInternal, with the
// node's explanation in its text. Transport failures are wrapped as they come;
// Done is closed when the connection is gone, after which every call fails.
//
// # Receiving
//
// Receive reads from a cursor without deleting; Ack deletes up to a sequence
// number. Subscribe asks the node to push: it calls the given function with
// each batch, in order, one at a time; the node sends the next batch only after
// the function returns, so the function may commit, Ack and then return.
// Subscription.Done is closed when pushes stop (Cancel, an error from the
// function, the node giving up, or the end of the connection); resubscribe
// from the last processed Seq.
package client
