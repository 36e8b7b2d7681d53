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
// ErrRateLimited, ErrInvalidArgument, ErrStaleEpoch, ErrInvalidCommit,
// ErrFutureEpoch, ErrGroupExists, ErrRevoked or ErrInternal, with the
// node's explanation in its text. Transport failures are wrapped as they come;
// Done is closed when the connection is gone, after which every call fails.
//
// # Devices
//
// A person's devices each connect with their own key. PublishDevices
// stores the person's device list (internal/devid, signed by the user key);
// a device it drops is revoked, and every later call of its connections
// fails with ErrRevoked. FetchDevices and FetchUserKeyPackages (one
// KeyPackage per listed device, with the list) hand them out: the node is
// not trusted for them, so check the list's signature and each package
// against it. LinkOpen, LinkPut, LinkGet and LinkClose are the rendezvous
// of linking a new device (package internal/link seals what goes through).
//
// # Groups
//
// CreateGroup, SubmitCommit, FanOut and GroupState give an MLS group's
// messages one order. The node follows each group's public state: the
// creator registers the group with its first GroupInfo (CreateGroup);
// handshake messages are PublicMessages the node verifies (signature of a
// member's leaf, proposals valid on the public tree, a well-formed path);
// application messages are PrivateMessages it only routes. The node derives
// every message's recipients from the tree: nobody declares a roster. It
// accepts one commit per (group, epoch); the loser of a race gets a
// *StaleEpochError naming the current epoch:
//
//	res, err := c.SubmitCommit(ctx, client.CommitRequest{ClientMsgID: id, Message: commit, Welcome: welcome})
//	var stale *client.StaleEpochError
//	switch {
//	case errors.As(err, &stale):
//		// drop the pending commit, apply the winner (it is in the queue), retry
//	case errors.Is(err, client.ErrInvalidCommit), errors.Is(err, client.ErrFutureEpoch):
//		// the node refused the commit itself: drop it
//	case err != nil:
//		// transport failure: resubmit with the same id; a Duplicate result
//		// means the first attempt was accepted
//	default:
//		// merge the pending commit; the group is now at res.Epoch
//	}
//
// The commit, Welcome and FanOut messages reach their recipients as
// ordinary envelopes (Sender is the submitter, Payload the MLSMessage,
// Sequenced set), so Receive and Subscribe deliver them in order with
// everything else. A member a commit removes receives that commit and
// nothing after it. Only members may submit, fan out or ask GroupState
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
