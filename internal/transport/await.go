package transport

import (
	"context"
	"errors"

	"capnproto.org/go/capnp/v3"
)

// ErrClosed: the connection ended while a call waited for its answer; the
// call may or may not have taken effect.
var ErrClosed = errors.New("connection closed")

// Await blocks until the answer to a call is in, ctx ends or closed is
// closed (nil: never), whichever is first, and returns the function that
// releases the answer: call it after reading the results.
//
// Use it instead of waiting on the future alone. capnp's RPC layer settles a
// question whose context ended only by sending a Finish message, and a
// connection that is shutting down sends nothing more: a call made from
// inside a callback the peer is waiting on (an ack from a push handler, say)
// would wait for good, and so would the shutdown, which waits for that
// callback to return. Await returns instead, and releases the answer in the
// background once capnp settles it (its release waits for the answer).
func Await(ctx context.Context, fut *capnp.Future, release capnp.ReleaseFunc, closed <-chan struct{}) (capnp.ReleaseFunc, error) {
	select {
	case <-fut.Done():
		return release, nil
	default:
	}
	select {
	case <-fut.Done():
		return release, nil
	case <-ctx.Done():
		go release()
		return func() {}, ctx.Err()
	case <-closed:
		go release()
		return func() {}, ErrClosed
	}
}
