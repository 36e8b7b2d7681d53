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
// # Groups
//
// SubmitCommit, FanOut and GroupState give an MLS group's messages one
// order. The node reads the group id and epoch from the MLSMessage header
// and accepts one commit per (group, epoch); the loser of a race gets a
// *StaleEpochError naming the current epoch:
//
//	res, err := c.SubmitCommit(ctx, client.CommitRequest{
//		ClientMsgID: id, Message: commit, Recipients: members,
//		Welcome: welcome, WelcomeRecipients: joiners,
//	})
//	var stale *client.StaleEpochError
//	switch {
//	case errors.As(err, &stale):
//		// drop the pending commit, apply the winner (it is in the queue), retry
//	case err != nil:
//		// transport failure: resubmit with the same id; a Duplicate result
//		// means the first attempt was accepted
//	default:
//		// merge the pending commit; the group is now at res.Epoch
//	}
//
// The commit, Welcome and FanOut messages reach their recipients as
// ordinary envelopes (Sender is the submitter, Payload the MLSMessage), so
// Receive and Subscribe deliver them in order with everything else. Only
// members of the roster of the group's last commit may submit or fan out
// (ErrUnauthorized otherwise).
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
