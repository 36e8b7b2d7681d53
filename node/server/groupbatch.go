package server

import (
	"context"
	"errors"
	"time"

	"capnproto.org/go/capnp/v3"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/schemas/group"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// maxFanOutBatch bounds the items of one fanOutBatch call; their bytes
// are bounded by twice the message size limit, the size of the largest
// single call (a commit and its Welcome), which the transport's frame
// holds.
const maxFanOutBatch = 64

// FanOutBatch serves fanOutBatch: each item is checked as FanOut checks
// it, in order, and the items up to the first refused one are stored in
// one store call (one transaction).
func (s *session) FanOutBatch(ctx context.Context, call group.GroupService_fanOutBatch) error {
	const method = "fanOutBatch"
	if s.srv.cfg.WithoutFanOutBatch {
		return capnp.Unimplemented(method + ": not implemented by this node")
	}
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		list, err := call.Args().Items()
		if err != nil {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: items: %v", method, err)
		}
		n := list.Len()
		if n > maxFanOutBatch {
			return fail(nodecp.ErrorCode_limit, "%s: %d items, limit %d", method, n, maxFanOutBatch)
		}
		total := 0
		for i := range n {
			msg, _ := list.At(i).MlsMessage()
			id, _ := list.At(i).ClientMsgId()
			total += len(msg) + len(id)
		}
		if limit := 2 * s.srv.cfg.MaxPayloadSize; total > limit {
			return fail(nodecp.ErrorCode_tooLarge, "%s: items have %d bytes, limit %d", method, total, limit)
		}
		// Each item is a request against the identity's rate limit, as
		// one fanOut call each would be (the call's own is taken): the
		// items past the tokens left are not tried, refused as rateLimited.
		tried := s.chargeItems(n)
		var rule *txRule
		items, refused := s.batchItems(method, list, tried, &rule)
		if refused == nil && tried < n {
			refused = fail(nodecp.ErrorCode_rateLimited, "%s: item %d: too many requests; slow down and retry", method, tried)
		}
		size := 0
		for _, it := range items {
			size += len(it.Payload)
		}
		if err := s.admitGroup(ctx, method, size); err != nil {
			return err
		}
		var results []store.FanOutResult
		if len(items) > 0 {
			// A message whose leaves' devices were not all known stops the
			// batch there: the next attempt goes on from it.
			err = s.inTxRule(ctx, method, func(r *txRule) error {
				rule = r
				res, err := s.srv.cfg.Store.FanOutBatch(ctx, s.identity, items[len(results):])
				results = append(results, res...)
				return err
			})
			if err != nil {
				refused = s.groupStoreError(method, err)
			}
		}
		for i, res := range results {
			s.fannedOut(len(items[i].Payload), res)
		}
		out, err := call.AllocResults()
		if err != nil {
			return err
		}
		rl, err := out.NewResults(int32(len(results)))
		if err != nil {
			return err
		}
		for i, res := range results {
			rl.At(i).SetGroupSeq(res.GroupSeq)
			rl.At(i).SetDuplicate(res.Duplicate)
		}
		if refused != nil {
			var ce *callError
			if !errors.As(refused, &ce) {
				ce = &callError{code: nodecp.ErrorCode_internal, msg: method + ": refused"}
			}
			s.log.Debug("batch item refused", "method", method, "stored", len(results), "err", ce)
			return out.SetRefusal(ce.Error())
		}
		return nil
	})
}

// chargeItems takes a rate-limit token for each of a batch's n items
// after the first (the call's own token paid for it) while tokens are
// left, and returns how many items may be tried.
func (s *session) chargeItems(n int) int {
	if n <= 1 {
		return n
	}
	now := time.Now()
	take := min(n-1, max(int(s.limiter.TokensAt(now)), 0))
	if take > 0 && !s.limiter.AllowN(now, take) {
		take = 0
	}
	return 1 + take
}

// batchItems checks the first n items of a batch in order, as FanOut checks a
// message, and returns those before the first refused one with its
// refusal. A proposal's view update judges with *rule, the rule of the
// store call's attempt.
func (s *session) batchItems(method string, list group.FanOutItem_List, n int, rule **txRule) ([]store.FanOutItem, error) {
	items := make([]store.FanOutItem, 0, n)
	for i := range n {
		msg, _ := list.At(i).MlsMessage()
		msgID, _ := list.At(i).ClientMsgId()
		it, err := s.fanOutItem(method, msg, msgID, rule)
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
	return items, nil
}
