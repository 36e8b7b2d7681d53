package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/quicproquo/quicproquo/schemas/delivery"
)

// DeliverFunc receives one pushed batch, in sequence order. The node sends
// the next batch only after it returns; an error ends the subscription.
type DeliverFunc func(ctx context.Context, batch []Envelope) error

// ErrSubscriptionEnded is the Err of a subscription ended by Cancel or by
// the end of the connection.
var ErrSubscriptionEnded = errors.New("subscription ended")

// Subscription is an active push subscription.
type Subscription struct {
	c   *Client
	cap delivery.Subscription

	cancelOnce sync.Once
	endOnce    sync.Once
	err        error
	done       chan struct{}
}

// end records why the subscription ended (the first reason wins).
func (s *Subscription) end(err error) {
	s.endOnce.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Done is closed when no more batches will be delivered: after Cancel, a
// DeliverFunc error, the node ending the subscription, or the end of the
// connection. Subscribe again from the last processed Seq to resume.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the subscription ended, once Done is closed: the
// DeliverFunc's error, a *NodeError from the node, or ErrSubscriptionEnded.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Subscribe asks the node to push recipient's messages with Seq > afterSeq
// (this client's own identity), stored ones first, then each new one while
// the subscription lasts. Pushed messages are not deleted: Ack them (from
// inside deliver is fine).
func (c *Client) Subscribe(ctx context.Context, recipient []byte, afterSeq uint64, deliver DeliverFunc) (*Subscription, error) {
	sub := &Subscription{c: c, done: make(chan struct{})}
	sink := delivery.MessageSink_ServerToClient(&sinkServer{deliver: deliver, sub: sub})
	fut, release := c.node.Subscribe(ctx, func(p delivery.DeliveryService_subscribe_Params) error {
		p.SetAfterSeq(afterSeq)
		if err := p.SetRecipientKey(recipient); err != nil {
			return err
		}
		return p.SetSink(sink)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, callError("subscribe", err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, callError("subscribe", err)
	}
	sub.cap = res.Subscription().AddRef()
	go func() {
		select {
		case <-c.done:
			sub.end(ErrSubscriptionEnded)
		case <-sub.done:
		}
	}()
	return sub, nil
}

// Cancel stops the pushes and releases the subscription.
func (s *Subscription) Cancel(ctx context.Context) error {
	var err error
	s.cancelOnce.Do(func() {
		s.end(ErrSubscriptionEnded)
		fut, release := s.cap.Cancel(ctx, nil)
		release, err = s.c.wait(ctx, fut.Future, release)
		if err == nil {
			_, err = fut.Struct()
		}
		release()
		s.cap.Release()
	})
	if err != nil {
		return callError("cancel subscription", err)
	}
	return nil
}

// sinkServer is the MessageSink the node calls.
type sinkServer struct {
	deliver DeliverFunc
	sub     *Subscription
}

func (s *sinkServer) Deliver(ctx context.Context, call delivery.MessageSink_deliver) error {
	select {
	case <-s.sub.done:
		return ErrSubscriptionEnded
	default:
	}
	list, err := call.Args().Envelopes()
	if err != nil {
		return err
	}
	batch, err := envelopes(list)
	if err != nil {
		s.sub.end(fmt.Errorf("subscription: malformed push: %w", err))
		return err
	}
	if err := s.deliver(ctx, batch); err != nil {
		s.sub.end(err)
		return err
	}
	return nil
}

func (s *sinkServer) Ended(ctx context.Context, call delivery.MessageSink_ended) error {
	reason, _ := call.Args().Reason()
	if ne, ok := parseNodeError(reason); ok {
		s.sub.end(fmt.Errorf("subscription: %w", ne))
	} else {
		s.sub.end(fmt.Errorf("subscription: node ended it: %s", reason))
	}
	return nil
}
