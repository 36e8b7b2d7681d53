package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/store"
)

// stranger is a throwaway identity registered at node the way an attacker
// would: a fresh key and the open policy's proof of work.
func stranger(t *testing.T, node *testnode.Node) *nodeclient.Client {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nodeclient.Dial(ctx, node.Addr, nodeclient.Config{Identity: priv, PinnedCert: node.CertDER})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Register(ctx, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGroupSurvivesStrangerFlood: while Bob is offline, 25 throwaway
// identities flood his queue; they get the strangers' share and a quota
// error past it, and Alice's messages and commits to their group (an
// invitation of Carol) still go through: Bob, back online, has them all.
func TestGroupSurvivesStrangerFlood(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "flooded", alice, bob)
	bob.stop()

	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		stored, refused int
		unexpected      []error
	)
	for i := range 25 {
		c := stranger(t, node)
		wg.Go(func() {
			for j := range 10 {
				_, _, err := c.Enqueue(ctx, bob.id, fmt.Appendf(nil, "spam %d/%d", i, j), nil)
				mu.Lock()
				switch {
				case err == nil:
					stored++
				case errors.Is(err, nodeclient.ErrQuota):
					refused++
				default:
					unexpected = append(unexpected, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if stored != store.DefaultMaxStrangerMessages || refused != 250-stored || len(unexpected) > 0 {
		t.Fatalf("flood: %d stored, %d refused, unexpected %v; want %d stored", stored, refused, unexpected, store.DefaultMaxStrangerMessages)
	}

	for i := range 3 {
		if _, err := alice.b.Send(ctx, gid, fmt.Sprintf("after the flood %d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{carol.id}); err != nil {
		t.Fatalf("invite (a commit to the flooded member): %v", err)
	}
	if j, err := carol.b.Join(ctx, 10*time.Second); err != nil || len(j) != 1 {
		t.Fatalf("carol joins: %v %v", j, err)
	}
	if _, err := carol.b.Send(ctx, gid, "carol here", nil); err != nil {
		t.Fatal(err)
	}

	bob2 := groupsStartOn(t, node, Config{}, bob.b.st)
	groupsWait(t, "bob has the group's messages and commit", func() bool {
		m, err := bob2.b.Members(ctx, gid)
		return err == nil && m.Epoch == 2 && len(m.Members) == 3 && len(groupsTexts(t, bob2, gid)) == 4
	})
}

// TestKeyPackageDrainToppedUp: a stranger takes all of Bob's one-time
// KeyPackages; the node's low-water notice has Bob's daemon upload fresh
// ones within seconds, not at its next periodic check (an hour here).
func TestKeyPackageDrainToppedUp(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	bob := groupsStartWith(t, node, Config{KeyPackageCheck: time.Hour})
	ctx := context.Background()
	s := stranger(t, node)
	for i := range 3 {
		if _, err := s.FetchKeyPackage(ctx, bob.id); err != nil {
			t.Fatalf("drain %d: %v", i, err)
		}
	}
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for {
		c := bob.b.client()
		if c != nil {
			if n, err := c.KeyPackageCount(ctx, bob.id); err == nil && n.Remaining == 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("Bob's KeyPackages were not topped up within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("topped up %v after the drain", time.Since(start).Round(time.Millisecond))
	// Fresh packages, not the drained ones: another fetch consumes one.
	kp, err := s.FetchKeyPackage(ctx, bob.id)
	if err != nil {
		t.Fatal(err)
	}
	if info := inspectKeyPackage(SameKeyRule{}, kp, bob.id, time.Now()); !info.Valid || info.LastResort {
		t.Fatalf("after the top-up: %+v", info)
	}
}
