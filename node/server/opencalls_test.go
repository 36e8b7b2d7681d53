package server_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
)

// A client making calls on one connection concurrently, fewer or more at
// once than the node keeps open (64), is never cut off: the Finish
// messages its transport holds back leave ahead of its next call or soon
// after on their own, and the client keeps at most 32 calls open, since
// capnp-go sends a call's Finish after it wakes the caller, whose next call
// may leave first (with 128 callers the node closed the connection).
func TestConcurrentCallsOnOneConnection(t *testing.T) {
	for _, callers := range []int{32, 128} {
		t.Run(fmt.Sprintf("callers=%d", callers), func(t *testing.T) {
			n := startTestNode(t, benchConfig(), store.Limits{})
			c := n.dial(t, newTestIdentity(t).priv)
			ctx := testCtx(t)
			const calls = 100
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range calls {
						if _, err := c.Ping(ctx); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("ping: %v", err)
			}
		})
	}
}
