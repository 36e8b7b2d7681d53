package client_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/node/client"
)

// TestManyConcurrentCalls: one client making more calls at once than the
// node lets a connection keep open (64) gets every answer. The client holds
// the calls past its own bound back until earlier ones are finished, instead
// of letting the node close the connection for too many open calls.
func TestManyConcurrentCalls(t *testing.T) {
	addr, cert := clientTestNode(t)
	ctx := clientTestCtx(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	c, err := client.Dial(ctx, addr, client.Config{Identity: priv, PinnedCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const callers, rounds = 128, 3 // 384 calls: within the rate limit's burst
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
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
		t.Fatalf("a call failed: %v", err)
	}
}
