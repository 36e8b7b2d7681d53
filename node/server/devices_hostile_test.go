package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"math"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// An anonymous connection (no identity) gets unauthorized on every device
// call, even carrying a list its user signed, and changes nothing.
func TestDevicesAnonymous(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	anon := n.dial(t, nil)
	slot := storetest.SlotID("anon")
	calls := map[string]func() error{
		"publishDevices": func() error { _, err := anon.PublishDevices(ctx, alice.list(t, U)); return err },
		"fetchDevices":   func() error { _, err := anon.FetchDevices(ctx, U); return err },
		"fetchUserKeyPackages": func() error {
			_, _, err := anon.FetchUserKeyPackages(ctx, U, false)
			return err
		},
		"linkOpen":  func() error { return anon.LinkOpen(ctx, slot) },
		"linkPut":   func() error { return anon.LinkPut(ctx, slot, client.LinkRequest, []byte("x")) },
		"linkGet":   func() error { _, err := anon.LinkGet(ctx, slot, client.LinkRequest); return err },
		"linkClose": func() error { return anon.LinkClose(ctx, slot) },
	}
	for name, call := range calls {
		wantErr(t, "anonymous "+name, call(), client.ErrUnauthorized)
	}
	if raw, _, err := n.store.DeviceList(ctx, U); err != nil || raw != nil {
		t.Fatalf("an anonymous call stored a list: %x, %v", raw, err)
	}
	checkServingDevices(t, n)
}

// A revoked device, reconnecting, can use no link slot: not open one, not
// put into or read another's.
func TestRevokedDeviceLinkSlots(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	laptop := newDevice(t, n, alice.user, alice.user)
	alice.publish(t, U, laptop.Pub)
	slot := storetest.SlotID("alice's")
	if err := alice.primary.Conn.LinkOpen(ctx, slot); err != nil {
		t.Fatal(err)
	}
	alice.publish(t, U)
	again := n.dial(t, laptop.Priv)
	wantErr(t, "revoked opens", again.LinkOpen(ctx, storetest.SlotID("laptop's")), client.ErrRevoked)
	wantErr(t, "revoked puts", again.LinkPut(ctx, slot, client.LinkRequest, []byte("let me in")), client.ErrRevoked)
	_, err := again.LinkGet(ctx, slot, client.LinkRequest)
	wantErr(t, "revoked reads", err, client.ErrRevoked)
	if got, err := alice.primary.Conn.LinkGet(ctx, slot, client.LinkRequest); err != nil || got != nil {
		t.Fatalf("the slot holds %q, %v", got, err)
	}
}

// Versions go up to math.MaxInt64 (what both stores keep); past it a list
// is refused as an invalid argument, up to math.MaxUint64, and nothing
// wraps: after the largest version every list is refused, an old one
// replayed included.
func TestDeviceListVersionNearMax(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	alice.publish(t, U)
	old := alice.list(t, U)
	if _, err := alice.primary.Conn.PublishDevices(ctx, old); err != nil {
		t.Fatal(err)
	}
	alice.version = math.MaxInt64 - 2
	alice.publish(t, U)
	last := alice.list(t, U) // math.MaxInt64
	if v, err := alice.primary.Conn.PublishDevices(ctx, last); err != nil || v != math.MaxInt64 {
		t.Fatalf("version MaxInt64: %d, %v", v, err)
	}
	for _, v := range []uint64{0, 1, 2, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64 - 1, math.MaxUint64} {
		l := &devid.DeviceList{User: U, Version: v, Devices: []ed25519.PublicKey{U}, Created: time.Now()}
		b, err := l.Sign(alice.user.Key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = alice.primary.Conn.PublishDevices(ctx, b)
		wantErr(t, "a list after MaxInt64", err, client.ErrInvalidArgument)
	}
	_, err := alice.primary.Conn.PublishDevices(ctx, old)
	wantErr(t, "replayed old list", err, client.ErrInvalidArgument)
	if got, _, err := n.store.DeviceList(ctx, U); err != nil || !bytes.Equal(got, last) {
		t.Fatalf("stored list is not the MaxInt64 one: %v", err)
	}
}

// Two nodes on one PostgreSQL database: a list published through A, when
// replayed through B (by anyone), is refused and the newer list stays, so
// nobody can roll a user's devices back by picking the other node.
func TestDeviceListReplayAcrossNodes(t *testing.T) {
	conn := pgtest.NewDatabase(t)
	a, b := startPostgresNode(t, conn), startPostgresNode(t, conn)
	ctx := testCtx(t)
	u, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	U := u.PublicKey()
	dpub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(v uint64, devices ...ed25519.PublicKey) []byte {
		l, err := (&devid.DeviceList{User: U, Version: v, Devices: devices}).Sign(u.Key)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ua := a.dial(t, u.Key)
	old, cur := sign(1, U, dpub), sign(2, U)
	for _, l := range [][]byte{old, cur} {
		if _, err := ua.PublishDevices(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	mallory := newTestIdentity(t)
	mb := b.dial(t, mallory.priv)
	for _, l := range [][]byte{old, cur} {
		_, err := mb.PublishDevices(ctx, l)
		wantErr(t, "a list replayed through B", err, client.ErrInvalidArgument)
	}
	got, err := mb.FetchDevices(ctx, U)
	if err != nil || !bytes.Equal(got, cur) {
		t.Fatalf("B serves another list than the newest: %v", err)
	}
}

// A version the stores cannot keep is refused before the pacing charge,
// so such lists spend none of the user's allowance.
func TestDeviceListVersionOverflowCostsNothing(t *testing.T) {
	n := startDeviceNode(t, server.Config{DeviceListBurst: 1, DeviceListRate: 0.001})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	for _, v := range []uint64{math.MaxInt64 + 1, math.MaxUint64, math.MaxUint64} {
		l := &devid.DeviceList{User: U, Version: v, Devices: []ed25519.PublicKey{U}, Created: time.Now()}
		b, err := l.Sign(alice.user.Key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = alice.primary.Conn.PublishDevices(ctx, b)
		wantErr(t, "version past MaxInt64", err, client.ErrInvalidArgument)
	}
	alice.publish(t, U)
}
