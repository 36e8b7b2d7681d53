package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
	"golang.org/x/time/rate"
)

// A user publishes DeviceListBurst lists at once, then is paced: the
// refused list is not stored, another user is not charged, and a replay of
// the user's old list (anyone may carry one) is refused by its version
// before it costs the user anything.
func TestDeviceListPace(t *testing.T) {
	n, reg := metricsNode(t, server.Config{Registration: server.RegistrationClosed})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	mallory := newDevUser(t, n)

	alice.publish(t, U)
	old := alice.list(t, U)
	if _, err := alice.primary.Conn.PublishDevices(ctx, old); err != nil {
		t.Fatal(err)
	}
	for range 2 * server.DefaultDeviceListBurst {
		_, err := mallory.primary.Conn.PublishDevices(ctx, old)
		wantErr(t, "replayed list", err, client.ErrInvalidArgument)
	}
	for range server.DefaultDeviceListBurst - 2 {
		alice.publish(t, U)
	}
	last, err := alice.primary.Conn.FetchDevices(ctx, U)
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.primary.Conn.PublishDevices(ctx, alice.list(t, U))
	wantErr(t, "list past the burst", err, client.ErrRateLimited)
	if got, err := alice.primary.Conn.FetchDevices(ctx, U); err != nil || !bytes.Equal(got, last) {
		t.Fatalf("a paced list was stored: %v", err)
	}
	if v := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": "deviceListRate"}); v != 1 {
		t.Fatalf("deviceListRate refusals %v, want 1", v)
	}
	mallory.publish(t, mallory.user.PublicKey())
	checkServingDevices(t, n)
}

// With fewer fetch tokens than the user has devices, fetchUserKeyPackages
// still succeeds (the charge is capped at the burst) and then is paced.
func TestFetchUserKeyPackagesSmallBurst(t *testing.T) {
	n := startDeviceNode(t, server.Config{FetchBurst: 2, FetchRate: rate.Limit(0.001)})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	bob := newDevUser(t, n)
	laptop := newDevice(t, n, alice.user, alice.user)
	phone := newDevice(t, n, alice.user, alice.user)
	alice.publish(t, U, laptop.Pub, phone.Pub)
	for _, m := range []*grouptest.Member{alice.primary, laptop, phone} {
		if err := uploadErr(t, m); err != nil {
			t.Fatal(err)
		}
	}
	pkgs, _, err := bob.primary.Conn.FetchUserKeyPackages(ctx, U, false)
	if err != nil || len(pkgs) != 3 {
		t.Fatalf("fetch of 3 devices with a burst of 2: %d packages, %v", len(pkgs), err)
	}
	_, _, err = bob.primary.Conn.FetchUserKeyPackages(ctx, U, false)
	wantErr(t, "second fetch", err, client.ErrRateLimited)
}

// A key with KeyPackages of its own at the node is an established
// identity even where the node keeps no registry: nobody may list it as a
// new device (dropping it would revoke it). A fresh key still may be.
func TestListingAStrangersKey(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{}) // RegistrationNone
	ctx := testCtx(t)
	bobID := newTestIdentity(t)
	bob := grouptest.MemberOf(bobID.priv)
	bob.Conn = n.dial(t, bobID.priv)
	if err := uploadErr(t, bob); err != nil {
		t.Fatal(err)
	}
	mallory := newDevUser(t, n)
	M := mallory.user.PublicKey()
	_, err := mallory.primary.Conn.PublishDevices(ctx, mallory.list(t, M, bob.Pub))
	wantErr(t, "listing bob's key", err, client.ErrUnauthorized)
	if got, err := bob.Conn.FetchDevices(ctx, M); err != nil || got != nil {
		t.Fatalf("a refused list was stored: %x, %v", got, err)
	}
	// A last-resort package alone makes an identity too.
	carolID := newTestIdentity(t)
	carol := grouptest.MemberOf(carolID.priv)
	carol.Conn = n.dial(t, carolID.priv)
	if _, err := carol.Conn.UploadKeyPackage(ctx, carol.Pub, kpBytes(t, carol), true); err != nil {
		t.Fatal(err)
	}
	_, err = mallory.primary.Conn.PublishDevices(ctx, mallory.list(t, M, carol.Pub))
	wantErr(t, "listing carol's key", err, client.ErrUnauthorized)

	laptop := newDevice(t, n, mallory.user, mallory.user)
	mallory.publish(t, M, laptop.Pub)
	if err := uploadErr(t, laptop); err != nil {
		t.Fatalf("a listed device uploads: %v", err)
	}
	if c, err := bob.Conn.KeyPackageCount(ctx, bob.Pub); err != nil || c.Remaining != 1 {
		t.Fatalf("bob's packages: %+v, %v", c, err)
	}
	if _, _, err := bob.Conn.Enqueue(ctx, bob.Pub, []byte("still mine"), nil); err != nil {
		t.Fatalf("bob after the attempt: %v", err)
	}
}

// freshKeys returns n new device keys (nobody's identity).
func freshKeys(t *testing.T, n int) []ed25519.PublicKey {
	t.Helper()
	keys := make([]ed25519.PublicKey, n)
	for i := range keys {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = pub
	}
	return keys
}

// A user's lists revoke at most MaxRevokedDevices devices: the list whose
// revocation would be the 257th is refused with limit and not stored; a
// list that drops nobody still goes through.
func TestRevokedDevicesCap(t *testing.T) {
	n, reg := metricsNode(t, server.Config{Registration: server.RegistrationClosed, DeviceListBurst: 100})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	revoked := 0
	keys := freshKeys(t, devid.MaxDevices-1)
	alice.publish(t, append([]ed25519.PublicKey{U}, keys...)...)
	for revoked+len(keys) <= server.DefaultMaxRevokedDevices {
		keys = freshKeys(t, devid.MaxDevices-1)
		alice.publish(t, append([]ed25519.PublicKey{U}, keys...)...)
		revoked += len(keys)
	}
	// Drop one at a time up to the cap.
	for revoked < server.DefaultMaxRevokedDevices {
		keys = keys[1:]
		alice.publish(t, append([]ed25519.PublicKey{U}, keys...)...)
		revoked++
	}
	if c, err := n.store.RevokedCount(ctx, U); err != nil || c != server.DefaultMaxRevokedDevices {
		t.Fatalf("RevokedCount = %d, %v", c, err)
	}
	last, err := alice.primary.Conn.FetchDevices(ctx, U)
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.primary.Conn.PublishDevices(ctx, alice.list(t, append([]ed25519.PublicKey{U}, keys[1:]...)...))
	wantErr(t, "revocation number 257", err, client.ErrLimit)
	if err == nil || !strings.Contains(err.Error(), "limit of 256") {
		t.Fatalf("error does not say the limit: %v", err)
	}
	if got, _ := alice.primary.Conn.FetchDevices(ctx, U); !bytes.Equal(got, last) {
		t.Fatal("the refused list was stored")
	}
	if v := metricValue(t, reg, "qpnode_limit_refusals_total", map[string]string{"kind": "revokedDevices"}); v != 1 {
		t.Fatalf("revokedDevices refusals %v, want 1", v)
	}
	alice.version-- // the refused version is free again
	alice.publish(t, append(append([]ed25519.PublicKey{U}, keys...), freshKeys(t, 1)...)...)
}

// Device lists, revocations and link slots count against the disk
// budget: past it each is refused with diskFull and nothing is stored.
func TestDevicesDiskBudget(t *testing.T) {
	n := startDeviceNode(t, server.Config{DiskBudget: 1 << 10}) // below an empty store
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	_, err := alice.primary.Conn.PublishDevices(ctx, alice.list(t, U))
	wantErr(t, "a list past the budget", err, client.ErrDiskFull)
	if raw, _, err := n.store.DeviceList(ctx, U); err != nil || raw != nil {
		t.Fatalf("a list past the budget was stored: %v", err)
	}
	slot := storetest.SlotID("budget")
	wantErr(t, "a link slot past the budget", alice.primary.Conn.LinkOpen(ctx, slot), client.ErrDiskFull)
	if _, err := n.store.Slot(ctx, slot); err == nil {
		t.Fatal("a slot past the budget was stored")
	}
	other := newDevUser(t, n)
	if err := n.store.OpenSlot(ctx, slot, other.user.PublicKey(), time.Now().Add(time.Minute), 4); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "a link request past the budget", alice.primary.Conn.LinkPut(ctx, slot, client.LinkRequest, []byte("hello")), client.ErrDiskFull)
}
