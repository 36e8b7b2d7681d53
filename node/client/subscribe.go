package client

import (
	"context"
	"sync"

	"github.com/quicproquo/quicproquo/schemas/delivery"
)

// DeliverFunc receives one pushed batch, in sequence order. The node sends
// the next batch only after it returns; an error ends the subscription.
type DeliverFunc func(ctx context.Context, batch []Envelope) error

// Subscription is an active push subscription.
type Subscription struct {
	cap  delivery.Subscription
	once sync.Once
}

// Subscribe asks the node to push recipient's messages with Seq > afterSeq
// (this client's own identity), stored ones first, then each new one while
// the subscription lasts. Pushed messages are not deleted: Ack them. The
// subscription ends with Cancel, a deliver error, or the connection.
func (c *Client) Subscribe(ctx context.Context, recipient []byte, afterSeq uint64, deliver DeliverFunc) (*Subscription, error) {
	sink := delivery.MessageSink_ServerToClient(&sinkServer{deliver: deliver})
	fut, release := c.node.Subscribe(ctx, func(p delivery.DeliveryService_subscribe_Params) error {
		p.SetAfterSeq(afterSeq)
		if err := p.SetRecipientKey(recipient); err != nil {
			return err
		}
		return p.SetSink(sink)
	})
	defer release()
	res, err := fut.Struct()
	if err != nil {
		return nil, callError("subscribe", err)
	}
	return &Subscription{cap: res.Subscription().AddRef()}, nil
}

// Cancel stops the pushes and releases the subscription.
func (s *Subscription) Cancel(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		fut, release := s.cap.Cancel(ctx, nil)
		_, err = fut.Struct()
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
}

func (s *sinkServer) Deliver(ctx context.Context, call delivery.MessageSink_deliver) error {
	list, err := call.Args().Envelopes()
	if err != nil {
		return err
	}
	batch, err := envelopes(list)
	if err != nil {
		return err
	}
	return s.deliver(ctx, batch)
}
