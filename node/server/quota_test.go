package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// openNode is a node under the open policy at a token proof of work, so
// that tests can mint throwaway identities the way an attacker would.
func openNode(t *testing.T, cfg server.Config, limits store.Limits) *testNode {
	cfg.Registration, cfg.PowDifficulty = server.RegistrationOpen, 4
	return startTestNode(t, cfg, limits)
}

// registered dials as a fresh identity and registers it.
func (n *testNode) registered(t *testing.T) (testIdentity, *client.Client) {
	t.Helper()
	id := newTestIdentity(t)
	c := n.dial(t, id.priv)
	if err := c.Register(testCtx(t), ""); err != nil {
		t.Fatalf("register: %v", err)
	}
	return id, c
}

// metricValue reads the counter or gauge name{labels} from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// TestQueueFloodByStrangers: 30 throwaway identities flood a user's queue;
// together they get its strangers' share (20 messages) and no more, with
// a quota error; a group member's direct messages fill the queue only to
// the room kept for group traffic; and the group's messages and commits
// still reach the flooded user.
func TestQueueFloodByStrangers(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := openNode(t, server.Config{Metrics: m}, store.Limits{MaxQueueDepth: 100, GroupReserve: 20, MaxStrangerMessages: 20, MaxStrangerBytes: 1 << 20})
	ctx := testCtx(t)
	victim, cv := n.registered(t)
	member, cm := n.registered(t)
	mm := grouptest.MemberOf(member.priv)
	mm.Conn = cm
	gid := mm.Create(t)
	add, err := mm.Group.AddMembers([]*mls.KeyPackage{grouptest.MemberOf(victim.priv).KeyPackage(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mm.Submit(t, add) // the victim's Welcome: the first message of its queue

	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		stored, refused int
		unexpected      []error
	)
	for i := range 30 {
		_, c := n.registered(t)
		wg.Go(func() {
			_, _, err := c.Enqueue(ctx, victim.pub, fmt.Appendf(nil, "spam %d", i), nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				stored++
			case errors.Is(err, client.ErrQuota):
				refused++
			default:
				unexpected = append(unexpected, err)
			}
		})
	}
	wg.Wait()
	if stored != 20 || refused != 10 || len(unexpected) > 0 {
		t.Fatalf("strangers: %d stored, %d refused with a quota error, unexpected %v; want 20, 10", stored, refused, unexpected)
	}
	if got := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": "quota"}); got != 10 {
		t.Fatalf("quota refusals metric = %v, want 10", got)
	}

	// The member is no stranger: its direct messages go on to 80 of 100
	// (the first commit and the strangers' 20 took 21).
	for i := 21; i < 80; i++ {
		if _, _, err := cm.Enqueue(ctx, victim.pub, fmt.Appendf(nil, "direct %d", i), nil); err != nil {
			t.Fatalf("member's direct message %d: %v", i, err)
		}
	}
	_, _, err = cm.Enqueue(ctx, victim.pub, []byte("one too many"), nil)
	wantErr(t, "direct message into the group reserve", err, client.ErrLimit)

	// Group traffic still goes through.
	if _, _, err := cm.FanOut(ctx, nil, grpPrivate(gid, 1, grpContentApplication, "hello group")); err != nil {
		t.Fatalf("group message to the flooded user: %v", err)
	}
	up, err := mm.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	mm.Submit(t, up)
	envs, err := cv.Receive(ctx, victim.pub, 80, 0)
	if err != nil || len(envs) != 2 || !bytes.HasSuffix(envs[0].Payload, []byte("hello group")) || !bytes.Equal(envs[1].Payload, up.Message) {
		t.Fatalf("the flooded user's group traffic: %v, %d envelopes", err, len(envs))
	}
}

// TestDiskFillByStrangers: throwaway identities fill the node's disk
// budget with large messages to many users; past the budget for direct
// messages they are refused with diskFull, the store stays within the
// budget, and group traffic still has its reserve.
func TestDiskFillByStrangers(t *testing.T) {
	const budget = 4 << 20
	reg := prometheus.NewRegistry()
	m, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := openNode(t, server.Config{Metrics: m, DiskBudget: budget}, store.Limits{MaxStrangerMessages: 1000, MaxStrangerBytes: 1 << 30})
	ctx := testCtx(t)
	victims := make([]testIdentity, 8)
	for i := range victims {
		victims[i], _ = n.registered(t)
	}
	big := make([]byte, 64<<10)
	var accepted int
	full := false
	for i := 0; i < 200 && !full; i++ {
		_, c := n.registered(t) // a new throwaway identity every few messages
		for j := range 4 {
			rand.Read(big)
			_, _, err := c.Enqueue(ctx, victims[(i*4+j)%len(victims)].pub, big, nil)
			if errors.Is(err, client.ErrDiskFull) {
				full = true
				break
			}
			if err != nil {
				t.Fatalf("enqueue %d: %v", accepted, err)
			}
			accepted += len(big)
		}
	}
	if !full {
		t.Fatalf("%d bytes accepted and no diskFull", accepted)
	}
	used, err := n.store.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("direct messages: %d bytes accepted, store at %d of %d bytes", accepted, used, budget)
	if used > budget || accepted > budget {
		t.Fatalf("store at %d bytes after %d accepted, budget %d", used, accepted, budget)
	}
	if got := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": "diskFull"}); got < 1 {
		t.Fatalf("diskFull refusals metric = %v", got)
	}
	if got := metricValue(t, reg, "qpnode_disk_used_bytes", nil); got <= 0 || got > budget {
		t.Fatalf("disk used metric = %v", got)
	}

	// A group still gets through, into the reserve.
	alice, ca := n.registered(t)
	ma := grouptest.MemberOf(alice.priv)
	ma.Conn = ca
	gid := ma.Create(t)
	add, err := ma.Group.AddMembers([]*mls.KeyPackage{grouptest.MemberOf(victims[0].priv).KeyPackage(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: add.Message, Welcome: add.Welcome}); err != nil {
		t.Fatalf("commit on a full node: %v", err)
	}
	if _, _, err := ca.FanOut(ctx, nil, grpPrivate(gid, 1, grpContentApplication, "still talking")); err != nil {
		t.Fatalf("group message on a full node: %v", err)
	}
	_, _, err = ca.Enqueue(ctx, alice.pub, big, nil)
	wantErr(t, "direct message on a full node", err, client.ErrDiskFull)
}

// TestMessagesExpire: the sweep deletes messages older than the TTL,
// delivered or not.
func TestMessagesExpire(t *testing.T) {
	n := openNode(t, server.Config{MessageTTL: 300 * time.Millisecond, ExpireInterval: 50 * time.Millisecond}, store.Limits{})
	ctx := testCtx(t)
	a, ca := n.registered(t)
	if _, _, err := ca.Enqueue(ctx, a.pub, []byte("short-lived"), nil); err != nil {
		t.Fatal(err)
	}
	envs, err := ca.Receive(ctx, a.pub, 0, 0)
	if err != nil || len(envs) != 1 {
		t.Fatalf("before expiry: %v %d", err, len(envs))
	}
	// The sweep runs every 50ms; wait for it with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		envs, err := ca.Receive(ctx, a.pub, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message was not expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	seq, _, err := ca.Enqueue(ctx, a.pub, []byte("next"), nil)
	if err != nil || seq != 2 {
		t.Fatalf("after expiry: seq %d, %v (sequence numbers are never reused)", seq, err)
	}
}

// withKeyPackages registers an identity that uploads count KeyPackages
// and a last-resort one, which it returns.
func withKeyPackages(t *testing.T, n *testNode, count int) (testIdentity, *client.Client, []byte) {
	t.Helper()
	ctx := testCtx(t)
	owner, co := n.registered(t)
	for i := range count {
		if _, err := co.UploadKeyPackage(ctx, owner.pub, testKeyPackage(owner.pub, byte(i)), false); err != nil {
			t.Fatal(err)
		}
	}
	last := testKeyPackage(owner.pub, 0xee)
	if _, err := co.UploadKeyPackage(ctx, owner.pub, last, true); err != nil {
		t.Fatal(err)
	}
	return owner, co, last
}

// TestKeyPackageDrainBounded: a stranger fetching one user's packages over
// and over consumes only the per-target burst, then gets the last-resort
// package, then is refused past its own burst; the owner is pushed a
// low-water notice.
func TestKeyPackageDrainBounded(t *testing.T) {
	n := openNode(t, server.Config{FetchBurst: 8, TargetFetchBurst: 5, TargetFetchRate: 0.001}, store.Limits{})
	ctx := testCtx(t)
	owner, co, last := withKeyPackages(t, n, 10)
	notices := make(chan client.Envelope, 8)
	sub, err := co.Subscribe(ctx, owner.pub, 0, func(ctx context.Context, batch []client.Envelope) error {
		for _, e := range batch {
			notices <- e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel(ctx)

	_, cs := n.registered(t)
	consumed, lastResort := 0, 0
	for i := range 8 {
		pkg, err := cs.FetchKeyPackage(ctx, owner.pub)
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		if bytes.Equal(pkg, last) {
			lastResort++
		} else {
			consumed++
		}
	}
	_, err = cs.FetchKeyPackage(ctx, owner.pub)
	wantErr(t, "fetch past the requester's burst", err, client.ErrRateLimited)
	if consumed != 5 || lastResort != 3 {
		t.Fatalf("%d consumed, %d last-resort; want 5, 3", consumed, lastResort)
	}
	if cnt, err := co.KeyPackageCount(ctx, owner.pub); err != nil || cnt.Remaining != 5 {
		t.Fatalf("owner has %+v, %v; want 5 left", cnt, err)
	}
	select {
	case e := <-notices:
		if !client.IsNodeNotice(e) || !bytes.Equal(e.Payload, client.NoticeKeyPackagesLow) {
			t.Fatalf("pushed %+v, want the low-water notice", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no low-water notice")
	}
}

// TestKeyPackagePeekConsumesNothing: a stranger peeking at one user's
// package over and over gets the last-resort package each time, takes
// none of the user's packages nor of its per-target budget, and is
// refused past its own burst like a fetch; an identity without a
// last-resort package, or never registered, has nothing to peek at.
func TestKeyPackagePeekConsumesNothing(t *testing.T) {
	n := openNode(t, server.Config{FetchBurst: 8, TargetFetchBurst: 5, TargetFetchRate: 0.001}, store.Limits{})
	ctx := testCtx(t)
	owner, co, last := withKeyPackages(t, n, 10)
	_, cs := n.registered(t)
	for i := range 8 {
		pkg, err := cs.PeekKeyPackage(ctx, owner.pub)
		if err != nil || !bytes.Equal(pkg, last) {
			t.Fatalf("peek %d: %x, %v; want the last-resort package", i, pkg, err)
		}
	}
	_, err := cs.PeekKeyPackage(ctx, owner.pub)
	wantErr(t, "peek past the requester's burst", err, client.ErrRateLimited)
	if cnt, err := co.KeyPackageCount(ctx, owner.pub); err != nil || cnt != (client.KeyPackageCount{Remaining: 10, LastResort: true}) {
		t.Fatalf("owner has %+v, %v after the peeks; want all 10 and the last-resort one", cnt, err)
	}
	// The peeks spent none of the owner's per-target budget: an inviter
	// still gets the burst's consumable packages.
	_, ci := n.registered(t)
	for i := range 5 {
		pkg, err := ci.FetchKeyPackage(ctx, owner.pub)
		if err != nil || bytes.Equal(pkg, last) {
			t.Fatalf("fetch %d after the peeks: last-resort %v, %v; want a consumable package", i, bytes.Equal(pkg, last), err)
		}
	}

	bare, cb := n.registered(t)
	if _, err := cb.UploadKeyPackage(ctx, bare.pub, testKeyPackage(bare.pub, 1), false); err != nil {
		t.Fatal(err)
	}
	_, err = ci.PeekKeyPackage(ctx, bare.pub)
	wantErr(t, "peek without a last-resort package", err, client.ErrNoKeyPackage)
	if cnt, err := cb.KeyPackageCount(ctx, bare.pub); err != nil || cnt.Remaining != 1 {
		t.Fatalf("a refused peek left %+v, %v; want the package kept", cnt, err)
	}
	_, err = ci.PeekKeyPackage(ctx, newTestIdentity(t).pub)
	wantErr(t, "peek at an unregistered identity", err, client.ErrNoKeyPackage)
}

// TestKeyPackageDiskBudget: KeyPackage uploads count against the disk
// budget, so registered identities cannot fill the disk 64 KiB a package
// at a time once direct traffic has used it up.
func TestKeyPackageDiskBudget(t *testing.T) {
	n := openNode(t, server.Config{DiskBudget: 1 << 10}, store.Limits{}) // below an empty store
	ctx := testCtx(t)
	a, ca := n.registered(t)
	_, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, 1), false)
	wantErr(t, "a KeyPackage past the budget", err, client.ErrDiskFull)
	_, err = ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, 2), true)
	wantErr(t, "a last-resort KeyPackage past the budget", err, client.ErrDiskFull)
	got, err := n.store.CountKeyPackages(ctx, a.pub) // suite 1: the key itself
	if err != nil {
		t.Fatal(err)
	}
	if got != (store.KeyPackageCount{}) {
		t.Fatalf("KeyPackages past the budget were stored: %+v", got)
	}
}
