package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/quicproquo/quicproquo/internal/panicstack"
	"github.com/quicproquo/quicproquo/internal/transport"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/schemas/auth"
	"github.com/quicproquo/quicproquo/schemas/delivery"
	"github.com/quicproquo/quicproquo/schemas/envelope"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// session serves NodeService to one connection.
type session struct {
	srv      *Server
	identity []byte // nil: anonymous
	log      *slog.Logger
	limiter  *rate.Limiter
	ctx      context.Context // ends with the connection

	subs   sync.WaitGroup
	subsMu sync.Mutex
	nsubs  int // active subscriptions

	challengeOnce  sync.Once
	challengeBytes []byte // the proof-of-work challenge of this connection
}

// maxSubscriptions bounds the push subscriptions of one connection.
const maxSubscriptions = 16

var _ nodecp.NodeService_Server = (*session)(nil)

// wait blocks until the session's subscriptions have stopped.
func (s *session) wait() { s.subs.Wait() }

// serve runs one call: it applies the rate limit, runs fn, and records the
// outcome.
func (s *session) serve(method string, fn func() error) error {
	return s.serveOutcome(method, func() (string, error) { return "", fn() })
}

// serveOutcome is serve for a call that may answer without an exception
// but not "ok" (a stale commit): fn names that outcome for the metrics.
func (s *session) serveOutcome(method string, fn func() (string, error)) error {
	return s.serveAdmitted(method, func() error {
		if !s.limiter.Allow() {
			return fail(nodecp.ErrorCode_rateLimited, "%s: too many requests; slow down and retry", method)
		}
		return nil
	}, fn)
}

// serveAdmitted is serveOutcome with admit in place of the rate limit.
func (s *session) serveAdmitted(method string, admit func() error, fn func() (string, error)) error {
	start := time.Now()
	var outcome string
	err := s.notRevoked(s.ctx, method)
	if err == nil {
		err = admit()
	}
	if err == nil {
		outcome, err = s.run(method, fn)
	}
	result := "ok"
	switch {
	case err != nil:
		result = codeOf(err).String()
		s.log.Debug("call refused", "method", method, "err", err)
	case outcome != "":
		result = outcome
	}
	s.srv.cfg.Metrics.request(method, result, time.Since(start))
	return err
}

// run runs fn. A panic in it (a bug that some input reaches) fails this
// call with an internal error instead of ending the node for every client;
// the log names where it happened, without argument values.
func (s *session) run(method string, fn func() (string, error)) (outcome string, err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		s.log.Error("call panicked", "method", method, "panic", fmt.Sprint(p), "stack", panicstack.Where())
		outcome, err = "", fail(nodecp.ErrorCode_internal, "%s: internal failure", method)
	}()
	return fn()
}

// authenticated requires an identity on the connection.
func (s *session) authenticated(method string) error {
	if s.identity == nil {
		return fail(nodecp.ErrorCode_unauthorized, "%s: connection has no client certificate; only ping is allowed", method)
	}
	return nil
}

// checkKey validates a 32-byte identity key argument.
func checkKey(method, what string, key []byte) error {
	if len(key) != store.IdentityKeySize {
		return fail(nodecp.ErrorCode_invalidArgument, "%s: %s has %d bytes, want %d", method, what, len(key), store.IdentityKeySize)
	}
	return nil
}

// owner requires the connection to be authenticated as key.
func (s *session) owner(method, what string, key []byte) error {
	if err := s.authenticated(method); err != nil {
		return err
	}
	if err := checkKey(method, what, key); err != nil {
		return err
	}
	if !bytes.Equal(key, s.identity) {
		return fail(nodecp.ErrorCode_unauthorized, "%s: connection is authenticated as %x, not %x", method, s.identity, key)
	}
	return nil
}

func (s *session) Ping(ctx context.Context, call nodecp.NodeService_ping) error {
	return s.serve("ping", func() error {
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		res.SetServerTimeUnixNano(time.Now().UnixNano())
		if s.identity != nil {
			return res.SetIdentityKey(s.identity)
		}
		return nil
	})
}

func (s *session) UploadKeyPackage(ctx context.Context, call auth.AuthService_uploadKeyPackage) error {
	const method = "uploadKeyPackage"
	return s.serve(method, func() error {
		args := call.Args()
		key, _ := args.IdentityKey()
		if err := s.owner(method, "identityKey", key); err != nil {
			return err
		}
		if err := s.registered(ctx, method); err != nil {
			return err
		}
		pkg, _ := args.Package()
		if len(pkg) > s.srv.cfg.MaxKeyPackageSize {
			return fail(nodecp.ErrorCode_tooLarge, "%s: key package has %d bytes, limit %d", method, len(pkg), s.srv.cfg.MaxKeyPackageSize)
		}
		if err := s.checkKeyPackageOwner(ctx, method, pkg, key); err != nil {
			return err
		}
		suite := keyPackageSuite(pkg)
		if !s.srv.keepsSuite(suite) {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: this node keeps no KeyPackages of cipher suite 0x%04x (it keeps %s)", method, suite, suiteList(s.srv.cfg.KeyPackageSuites))
		}
		// Stored bytes count against the disk budget like a device list's.
		if err := s.admitDisk(ctx, method, len(pkg), false); err != nil {
			return err
		}
		fp, err := s.srv.cfg.Store.PutKeyPackage(ctx, directoryKey(key, suite), pkg, args.LastResort())
		if err != nil {
			return s.storeError(method, err)
		}
		if fp != sha256.Sum256(pkg) {
			s.log.Error("store returned a wrong key package fingerprint", "got", fmt.Sprintf("%x", fp))
			return fail(nodecp.ErrorCode_internal, "%s: storage failure", method)
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		return res.SetFingerprint(fp[:])
	})
}

func (s *session) FetchKeyPackage(ctx context.Context, call auth.AuthService_fetchKeyPackage) error {
	const method = "fetchKeyPackage"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		key, _ := call.Args().IdentityKey()
		if err := checkKey(method, "identityKey", key); err != nil {
			return err
		}
		suite := call.Args().CipherSuite()
		if !s.srv.keepsSuite(suite) {
			return fail(nodecp.ErrorCode_noKeyPackage, "%s: this node keeps no KeyPackages of cipher suite 0x%04x (it keeps %s)", method, suite, suiteList(s.srv.cfg.KeyPackageSuites))
		}
		peek := call.Args().Peek()
		pkg, err := s.fetchKeyPackage(ctx, method, key, suite, peek)
		if err != nil {
			return err
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		res.SetPeeked(peek)
		return res.SetPackage(pkg)
	})
}

func (s *session) KeyPackageCount(ctx context.Context, call auth.AuthService_keyPackageCount) error {
	const method = "keyPackageCount"
	return s.serve(method, func() error {
		key, _ := call.Args().IdentityKey()
		if err := s.owner(method, "identityKey", key); err != nil {
			return err
		}
		suite := call.Args().CipherSuite()
		if !s.srv.keepsSuite(suite) {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: this node keeps no KeyPackages of cipher suite 0x%04x (it keeps %s)", method, suite, suiteList(s.srv.cfg.KeyPackageSuites))
		}
		n, err := s.srv.cfg.Store.CountKeyPackages(ctx, directoryKey(key, suite))
		if err != nil {
			return s.storeError(method, err)
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		res.SetRemaining(uint32(max(n.Remaining, 0)))
		res.SetLastResort(n.LastResort)
		return nil
	})
}

func (s *session) Enqueue(ctx context.Context, call delivery.DeliveryService_enqueue) error {
	const method = "enqueue"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		args := call.Args()
		recipient, _ := args.RecipientKey()
		if err := checkKey(method, "recipientKey", recipient); err != nil {
			return err
		}
		payload, _ := args.Payload()
		if len(payload) > s.srv.cfg.MaxPayloadSize {
			return fail(nodecp.ErrorCode_tooLarge, "%s: payload has %d bytes, limit %d", method, len(payload), s.srv.cfg.MaxPayloadSize)
		}
		if len(payload) == 0 {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: empty payload", method)
		}
		msgID, _ := args.ClientMsgId()
		if len(msgID) > maxClientMsgIDSize {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: clientMsgId has %d bytes, limit %d", method, len(msgID), maxClientMsgIDSize)
		}
		if err := s.admitDirect(ctx, method, recipient, len(payload)); err != nil {
			return err
		}
		seq, dup, err := s.srv.cfg.Store.Enqueue(ctx, recipient, s.identity, msgID, payload)
		if err != nil {
			return s.storeError(method, err)
		}
		if !dup {
			s.srv.cfg.Metrics.enqueued(len(payload))
			s.srv.notifier.notify(recipient)
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		res.SetSeq(seq)
		res.SetDuplicate(dup)
		return nil
	})
}

// receivePage bounds the messages read from the store at once: a read
// holds all their payloads before the batch is trimmed to maxBatchBytes,
// so one read holds at most receivePage × MaxPayloadSize bytes.
const receivePage = 32

// receive reads up to limit messages after the cursor, trimmed so that the
// payloads stay within maxBatchBytes (always at least one message).
func (s *session) receive(ctx context.Context, recipient []byte, after uint64, limit int) ([]store.Message, error) {
	msgs, _, err := s.receiveMore(ctx, recipient, after, limit)
	return msgs, err
}

// receiveMore is receive that also reports whether the queue may hold more
// after what it returns (false: it read to the queue's end).
func (s *session) receiveMore(ctx context.Context, recipient []byte, after uint64, limit int) (_ []store.Message, more bool, _ error) {
	if limit <= 0 || limit > s.srv.cfg.ReceiveBatch {
		limit = s.srv.cfg.ReceiveBatch
	}
	var out []store.Message
	total := 0
	for len(out) < limit {
		page := min(limit-len(out), receivePage)
		msgs, err := s.srv.cfg.Store.Receive(ctx, recipient, after, page)
		if err != nil {
			return nil, false, err
		}
		for _, m := range msgs {
			if total += len(m.Payload); total > maxBatchBytes && len(out) > 0 {
				return out, true, nil
			}
			out = append(out, m)
		}
		if len(msgs) < page {
			return out, false, nil
		}
		after = msgs[len(msgs)-1].Seq
	}
	return out, true, nil
}

func (s *session) Fetch(ctx context.Context, call delivery.DeliveryService_fetch) error {
	const method = "fetch"
	return s.serve(method, func() error {
		recipient, _ := call.Args().RecipientKey()
		if err := s.owner(method, "recipientKey", recipient); err != nil {
			return err
		}
		// Drain in bounded batches: read, then delete what was read. The
		// stripe lock keeps two fetches of one queue from returning the
		// same messages.
		h := fnv.New32a()
		h.Write(recipient)
		mu := &s.srv.fetchMu[h.Sum32()%uint32(len(s.srv.fetchMu))]
		mu.Lock()
		defer mu.Unlock()
		msgs, err := s.receive(ctx, recipient, 0, 0)
		if err != nil {
			return s.storeError(method, err)
		}
		if len(msgs) > 0 {
			if _, err := s.srv.cfg.Store.Ack(ctx, recipient, msgs[len(msgs)-1].Seq); err != nil {
				return s.storeError(method, err)
			}
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		list, err := res.NewPayloads(int32(len(msgs)))
		if err != nil {
			return err
		}
		for i, m := range msgs {
			if err := list.Set(i, m.Payload); err != nil {
				return err
			}
		}
		return nil
	})
}

// setEnvelopes fills list with msgs.
func setEnvelopes(list envelope.Envelope_List, msgs []store.Message) error {
	for i, m := range msgs {
		e := list.At(i)
		e.SetSeq(m.Seq)
		if err := e.SetSender(m.Sender); err != nil {
			return err
		}
		if err := e.SetClientMsgId(m.ClientMsgID); err != nil {
			return err
		}
		if err := e.SetPayload(m.Payload); err != nil {
			return err
		}
		e.SetEnqueuedAtUnixNano(m.EnqueuedAt.UnixNano())
		e.SetSequenced(m.Sequenced)
		e.SetGroupSeq(m.GroupSeq)
	}
	return nil
}

// cursorWithin refuses, with cursorAhead, a client's cursor (the number
// it read or acknowledges up to) above the last number recipient's queue
// handed out. The client saw a later queue than this node's database
// holds (one restored from a backup, say): reading on from its cursor
// would skip the messages now numbered below it, and acknowledging up to
// it would delete them unread. The refusal names the queue's last number;
// the client reads again from where it knows the node to be.
func (s *session) cursorWithin(ctx context.Context, method string, recipient []byte, cursor uint64) error {
	if cursor == 0 {
		return nil
	}
	last, err := s.srv.cfg.Store.LastSeq(ctx, recipient)
	if err != nil {
		return s.storeError(method, err)
	}
	if cursor > last {
		s.log.Warn("a client's cursor is ahead of its queue", "method", method, "cursor", cursor, "last_seq", last)
		return fail(nodecp.ErrorCode_cursorAhead, "%s: seq %d is past the queue's last, %d (the node's database is older than what this client read)", method, cursor, last)
	}
	return nil
}

func (s *session) Receive(ctx context.Context, call delivery.DeliveryService_receive) error {
	const method = "receive"
	return s.serve(method, func() error {
		args := call.Args()
		recipient, _ := args.RecipientKey()
		if err := s.owner(method, "recipientKey", recipient); err != nil {
			return err
		}
		msgs, err := s.receive(ctx, recipient, args.AfterSeq(), int(min(args.Limit(), 1<<20)))
		if err != nil {
			return s.storeError(method, err)
		}
		if len(msgs) == 0 {
			if err := s.cursorWithin(ctx, method, recipient, args.AfterSeq()); err != nil {
				return err
			}
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		list, err := res.NewEnvelopes(int32(len(msgs)))
		if err != nil {
			return err
		}
		return setEnvelopes(list, msgs)
	})
}

func (s *session) Ack(ctx context.Context, call delivery.DeliveryService_ack) error {
	const method = "ack"
	return s.serve(method, func() error {
		args := call.Args()
		recipient, _ := args.RecipientKey()
		if err := s.owner(method, "recipientKey", recipient); err != nil {
			return err
		}
		if err := s.cursorWithin(ctx, method, recipient, args.UpToSeq()); err != nil {
			return err
		}
		n, err := s.srv.cfg.Store.Ack(ctx, recipient, args.UpToSeq())
		if err != nil {
			return s.storeError(method, err)
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		res.SetDeleted(uint32(max(n, 0)))
		return nil
	})
}

func (s *session) Subscribe(ctx context.Context, call delivery.DeliveryService_subscribe) error {
	const method = "subscribe"
	return s.serve(method, func() error {
		args := call.Args()
		recipient, _ := args.RecipientKey()
		if err := s.owner(method, "recipientKey", recipient); err != nil {
			return err
		}
		if !args.HasSink() {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: no sink", method)
		}
		if err := s.cursorWithin(ctx, method, recipient, args.AfterSeq()); err != nil {
			return err
		}
		s.subsMu.Lock()
		if s.nsubs >= maxSubscriptions {
			s.subsMu.Unlock()
			return fail(nodecp.ErrorCode_limit, "%s: %d subscriptions on one connection; cancel one first", method, maxSubscriptions)
		}
		s.nsubs++
		s.subsMu.Unlock()
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		sctx, cancel := context.WithCancel(s.ctx)
		sub := &subscription{cancel: cancel}
		if err := res.SetSubscription(delivery.Subscription_ServerToClient(sub)); err != nil {
			cancel()
			s.subsMu.Lock()
			s.nsubs--
			s.subsMu.Unlock()
			return err
		}
		// The arguments are released when this call returns: keep what the
		// pushes need.
		sink := args.Sink().AddRef()
		recipient = bytes.Clone(recipient)
		after := args.AfterSeq()
		s.subs.Add(1)
		s.srv.cfg.Metrics.subscriptionDelta(1)
		go func() {
			defer s.subs.Done()
			defer func() {
				s.subsMu.Lock()
				s.nsubs--
				s.subsMu.Unlock()
			}()
			defer s.srv.cfg.Metrics.subscriptionDelta(-1)
			defer sink.Release()
			defer cancel()
			err := s.push(sctx, recipient, after, sink)
			s.log.Debug("subscription ended", "err", err)
			if (errors.Is(err, errPushStore) || errors.Is(err, errPushRevoked)) && sctx.Err() == nil {
				// Tell the subscriber, so that it does not wait for
				// pushes that will not come.
				reason := fail(nodecp.ErrorCode_internal, "subscribe: push stopped: storage failure").Error()
				if errors.Is(err, errPushRevoked) {
					reason = errPushRevoked.Error()
				}
				ectx, ecancel := context.WithTimeout(sctx, 5*time.Second)
				defer ecancel()
				fut, release := sink.Ended(ectx, func(p delivery.MessageSink_ended_Params) error {
					return p.SetReason(reason)
				})
				release, _ = transport.Await(ectx, fut.Future, release, nil)
				release()
			}
		}()
		return nil
	})
}

// errPushStore: a push stopped because the store failed.
var errPushStore = errors.New("push: store failure")

// errPushRevoked: a push stopped because its device was revoked.
var errPushRevoked = fail(nodecp.ErrorCode_revoked, "push: the device was revoked")

// push sends the messages after cursor to sink, one batch per deliver call,
// and waits for new ones until ctx ends or a deliver fails.
func (s *session) push(ctx context.Context, recipient []byte, cursor uint64, sink delivery.MessageSink) error {
	wake, stop := s.srv.notifier.watch(recipient)
	defer stop()
	for {
		// A device revoked through another node sharing the store
		// receives nothing more (this node closes its own connections).
		if revoked, err := s.srv.isRevoked(ctx, recipient); err == nil && revoked {
			return errPushRevoked
		}
		msgs, more, err := s.receiveMore(ctx, recipient, cursor, 0)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Error("push: store failure", "err", err)
			return fmt.Errorf("%w: %w", errPushStore, err)
		}
		if len(msgs) > 0 {
			if err := deliver(ctx, sink, msgs); err != nil {
				return fmt.Errorf("push: deliver: %w", err)
			}
			s.srv.cfg.Metrics.pushedMessages(len(msgs))
			cursor = msgs[len(msgs)-1].Seq
			if more {
				continue
			}
		}
		// The read reached the queue's end: whatever is stored after it
		// wakes the watch, which was set before the read. So the queue is
		// not read again, empty, after every delivery.
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// deliver makes one sink.deliver call and waits for it to return.
func deliver(ctx context.Context, sink delivery.MessageSink, msgs []store.Message) error {
	fut, release := sink.Deliver(ctx, func(p delivery.MessageSink_deliver_Params) error {
		list, err := p.NewEnvelopes(int32(len(msgs)))
		if err != nil {
			return err
		}
		return setEnvelopes(list, msgs)
	})
	release, err := transport.Await(ctx, fut.Future, release, nil)
	defer release()
	if err != nil {
		return err
	}
	_, err = fut.Struct()
	return err
}

// subscription is the capability a subscriber holds; releasing or
// cancelling it stops the pushes.
type subscription struct {
	cancel context.CancelFunc
}

func (s *subscription) Cancel(ctx context.Context, call delivery.Subscription_cancel) error {
	s.cancel()
	return nil
}

// Shutdown is called when the subscriber releases its last reference.
func (s *subscription) Shutdown() { s.cancel() }
