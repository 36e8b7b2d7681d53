package client

import (
	"context"
	"sync"

	"capnproto.org/go/capnp/v3"
)

// maxCallsInFlight bounds the calls a client has open at the node at once.
// The node closes a connection with more than 64 calls not finished, and
// capnp sends a call's Finish a moment after it has woken the caller, whose
// next call may leave first; so the client keeps well below the node's
// bound, and a call past it waits for an earlier one to be released.
const maxCallsInFlight = 32

// boundedHook is the node's capability with at most len(slots) calls open
// through it: Send takes a slot before the call leaves and the call's
// release gives it back. Every method of Client calls through it.
type boundedHook struct {
	node    capnp.Client
	slots   chan struct{}
	closing <-chan struct{}
}

// bounded returns node behind a boundedHook; closing ends a wait for a slot.
func bounded(node capnp.Client, closing <-chan struct{}) capnp.Client {
	return capnp.NewClient(&boundedHook{node: node, slots: make(chan struct{}, maxCallsInFlight), closing: closing})
}

func (h *boundedHook) Send(ctx context.Context, s capnp.Send) (*capnp.Answer, capnp.ReleaseFunc) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return capnp.ErrorAnswer(s.Method, ctx.Err()), func() {}
	case <-h.closing:
		return capnp.ErrorAnswer(s.Method, ErrClosed), func() {}
	}
	ans, release := h.node.SendCall(ctx, s)
	var once sync.Once
	return ans, func() {
		release()
		once.Do(func() { <-h.slots })
	}
}

func (h *boundedHook) Recv(ctx context.Context, r capnp.Recv) capnp.PipelineCaller {
	return h.node.RecvCall(ctx, r)
}

func (h *boundedHook) Brand() capnp.Brand { return h.node.State().Brand }

func (h *boundedHook) Shutdown() { h.node.Release() }

func (h *boundedHook) String() string { return "bounded(" + h.node.String() + ")" }
