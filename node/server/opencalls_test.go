package server_test

import (
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
)

// A client with half as many concurrent calls on one connection as the node
// keeps open (64) is not cut off: the Finish messages its transport holds
// back leave ahead of its next call or soon after on their own. (Near the
// bound a caller can be: capnp-go sends a call's Finish after it wakes the
// caller, whose next call may leave first.)
func TestConcurrentCallsUnderOpenLimit(t *testing.T) {
	n := startTestNode(t, benchConfig(), store.Limits{})
	c := n.dial(t, newTestIdentity(t).priv)
	ctx := testCtx(t)
	const callers, calls = 32, 300
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
}
