package backend

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// testClock is a clock a test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func storedKeyPackages(t *testing.T, u *groupsUser) []store.KeyPackageSecret {
	t.Helper()
	var kps []store.KeyPackageSecret
	if err := u.b.view(context.Background(), func(tx *store.Tx) (err error) { kps, err = tx.KeyPackages(); return }); err != nil {
		t.Fatal(err)
	}
	return kps
}

// KeyPackages are replaced before they expire, the last-resort one too,
// and private halves are deleted a grace period after their lifetime,
// drained ones (handed out, never used) included.
func TestKeyPackageRotationAndExpiry(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	clock := &testClock{now: time.Now()}
	t0 := clock.Now()
	// One suite: the rotation works per suite alike.
	u := groupsStartWith(t, node, Config{Now: clock.Now, KeyPackageCheck: time.Hour, KeyPackageSuites: []mls.CipherSuite{DefaultCipherSuite}})
	peer := groupsStart(t, node)
	ctx := context.Background()
	life := mls.DefaultKeyPackageLifetime
	first := storedKeyPackages(t, u)
	if len(first) != 4 {
		t.Fatalf("%d KeyPackages stored, want 3 and a last-resort one", len(first))
	}
	for _, kp := range first {
		if d := kp.ExpiresAt.Sub(t0.Add(life)); d < -time.Minute || d > time.Minute {
			t.Fatalf("KeyPackage expires at %v, want %v", kp.ExpiresAt, t0.Add(life))
		}
	}
	// A peer takes one (it is drained: no Welcome will use it).
	if _, err := peer.b.FetchKey(ctx, u.id); err != nil {
		t.Fatal(err)
	}
	// The node's low-water notice has u replace it at once (before the
	// clock moves on).
	groupsWait(t, "the fetched KeyPackage replaced", func() bool {
		c := u.b.client()
		if c == nil {
			return false
		}
		n, err := c.KeyPackageCount(ctx, u.id)
		return err == nil && n.Remaining == 3
	})

	// Ten days before expiry: everything is replaced.
	clock.advance(life - 10*24*time.Hour)
	if _, err := u.b.topUpKeyPackages(ctx, u.b.client()); err != nil {
		t.Fatal(err)
	}
	var newLR, newOnes int
	for _, kp := range storedKeyPackages(t, u) {
		if kp.ExpiresAt.After(t0.Add(life + time.Hour)) {
			newOnes++
			if kp.LastResort {
				newLR++
			}
		}
	}
	if newLR != 1 || newOnes != 4 {
		t.Fatalf("after rotation: %d new KeyPackages (%d last-resort), want 4 (1)", newOnes, newLR)
	}
	// The node hands out the new last-resort one once the others are
	// gone (u is stopped, so that it does not top them up meanwhile).
	u.stop()
	var last KeyPackageInfo
	for range 10 {
		info, err := peer.b.FetchKey(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		if last = info; info.LastResort {
			break
		}
	}
	if !last.LastResort || !last.NotAfter.After(t0.Add(life+time.Hour)) {
		t.Fatalf("the node's last-resort KeyPackage expires %v (last resort %v), want the new one", last.NotAfter, last.LastResort)
	}

	// After the old ones' lifetime and the grace period, their private
	// halves are gone; the new ones stay.
	clock.advance(10*24*time.Hour + u.b.cfg.KeyPackageGrace + time.Hour)
	if err := u.b.pruneKeyPackages(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	left := storedKeyPackages(t, u)
	for _, kp := range left {
		if !kp.ExpiresAt.After(t0.Add(life + time.Hour)) {
			t.Fatalf("an expired KeyPackage's private half is still stored: expires %v", kp.ExpiresAt)
		}
	}
	if len(left) != 4 {
		t.Fatalf("%d KeyPackages left, want the 4 new ones", len(left))
	}
}

// Retention prunes old messages and events on the injected clock; the
// default keeps everything.
func TestRetentionPrunes(t *testing.T) {
	clock := &testClock{now: time.Now()}
	b := backendNew(t, Config{Now: clock.Now})
	g := backendPutGroup(t, b, 1, "team")
	for _, text := range []string{"old 1", "old 2", "newest"} {
		backendReceive(t, b, g, text)
	}
	ctx := context.Background()
	if m, e, err := b.PruneHistory(ctx); err != nil || m+e != 0 {
		t.Fatalf("default retention pruned %d messages, %d events (%v)", m, e, err)
	}
	b.cfg.Retention = Retention{Messages: time.Hour, Events: time.Hour}
	b.st.SetClock(clock.Now)
	clock.advance(2 * time.Hour)
	m, e, err := b.PruneHistory(ctx)
	if err != nil || m != 2 || e != 1 {
		t.Fatalf("pruned %d messages and %d events (%v); want 2 (the newest stays) and the newest's event", m, e, err)
	}
	p, err := b.Messages(ctx, MessagesQuery{Group: "team"})
	if err != nil || len(p.Messages) != 1 || p.Messages[0].Text != "newest" || p.Messages[0].Seq != 3 {
		t.Fatalf("history after pruning: %+v %v", p.Messages, err)
	}
	backendReceive(t, b, g, "next")
	if p, err := b.Messages(ctx, MessagesQuery{Group: "team", After: 3}); err != nil || len(p.Messages) != 1 || p.Messages[0].Seq != 4 {
		t.Fatalf("a message after pruning: %+v %v, want seq 4", p.Messages, err)
	}
}
