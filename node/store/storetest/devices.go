package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

func runDevices(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Devices/Versions", testDeviceListVersions},
		{"Devices/CheckRefuses", testDeviceListCheckRefuses},
		{"Devices/Revoke", testDeviceRevoke},
		{"Devices/ConcurrentPublish", testDeviceListConcurrent},
		{"Devices/Invalid", testDevicesInvalid},
		{"Devices/FanOutSkipsRevoked", testFanOutSkipsRevoked},
		{"LinkSlots/Boxes", testSlotBoxes},
		{"LinkSlots/Limit", testSlotLimit},
		{"LinkSlots/Expire", testSlotExpire},
		{"Devices/RevokedCount", testRevokedCount},
		{"Devices/States", testDeviceStates},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// SlotID returns a distinct link slot id for label.
func SlotID(label string) []byte { return Key("slot " + label) }

func keepAll(prev []byte) (store.Revocation, error) { return store.Revocation{}, nil }

func wantList(t *testing.T, s store.Store, user, list []byte, version uint64) {
	t.Helper()
	got, v, err := s.DeviceList(testCtx(t), user)
	noErr(t, "DeviceList", err)
	if !bytes.Equal(got, list) || v != version || (list == nil) != (got == nil) {
		t.Fatalf("DeviceList = %q v%d, want %q v%d", got, v, list, version)
	}
}

func testDeviceListVersions(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	u, d := Key("user"), Key("device")
	wantList(t, s, u, nil, 0)
	users, err := s.DeviceUsers(ctx, d)
	noErr(t, "DeviceUsers", err)
	if len(users) != 0 {
		t.Fatalf("users of an unlisted device: %x", users)
	}
	var seen [][]byte
	record := func(prev []byte) (store.Revocation, error) {
		seen = append(seen, prev)
		return store.Revocation{}, nil
	}
	noErr(t, "PutDeviceList v1", s.PutDeviceList(ctx, u, 1, []byte("list 1"), [][]byte{u, d}, record))
	wantList(t, s, u, []byte("list 1"), 1)
	wantErr(t, "same version", s.PutDeviceList(ctx, u, 1, []byte("list 1b"), [][]byte{u}, record), store.ErrStaleVersion)
	wantErr(t, "older version", s.PutDeviceList(ctx, u, 0, []byte("list 0"), [][]byte{u}, record), store.ErrStaleVersion)
	noErr(t, "PutDeviceList v5", s.PutDeviceList(ctx, u, 5, []byte("list 5"), [][]byte{u}, record))
	wantList(t, s, u, []byte("list 5"), 5)
	if len(seen) != 2 || seen[0] != nil || string(seen[1]) != "list 1" {
		t.Fatalf("check saw %q, want [nil, list 1] (and not the stale ones)", seen)
	}
	// The members follow the current list.
	users, err = s.DeviceUsers(ctx, u)
	noErr(t, "DeviceUsers", err)
	if len(users) != 1 || !bytes.Equal(users[0], u) {
		t.Fatalf("users of u: %x", users)
	}
	users, err = s.DeviceUsers(ctx, d)
	noErr(t, "DeviceUsers", err)
	if len(users) != 0 {
		t.Fatalf("users of a device no longer listed: %x", users)
	}
	// Users are separate, and one key may be listed by two.
	v := Key("other user")
	noErr(t, "PutDeviceList other", s.PutDeviceList(ctx, v, 1, []byte("other"), [][]byte{v, u}, keepAll))
	users, err = s.DeviceUsers(ctx, u)
	noErr(t, "DeviceUsers", err)
	if len(users) != 2 {
		t.Fatalf("users of u: %x", users)
	}
	wantList(t, s, u, []byte("list 5"), 5)
}

func testDeviceListCheckRefuses(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	u, d := Key("user"), Key("device")
	noErr(t, "PutDeviceList v1", s.PutDeviceList(ctx, u, 1, []byte("list 1"), [][]byte{u, d}, keepAll))
	noErr(t, "Enqueue", enqueueErr(t, s, d))
	err := s.PutDeviceList(ctx, u, 2, []byte("list 2"), [][]byte{u}, func([]byte) (store.Revocation, error) {
		return store.Revocation{Devices: [][]byte{d}}, errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("refused list: %v", err)
	}
	wantList(t, s, u, []byte("list 1"), 1)
	revoked, err := s.Revoked(ctx, d)
	noErr(t, "Revoked", err)
	if revoked {
		t.Fatal("a refused list revoked its device")
	}
	msgs, err := s.Receive(ctx, d, 0, 10)
	noErr(t, "Receive", err)
	if len(msgs) != 1 {
		t.Fatalf("a refused list dropped the queue: %d messages", len(msgs))
	}
}

func enqueueErr(t *testing.T, s store.Store, recipient []byte) error {
	_, _, err := s.Enqueue(testCtx(t), recipient, Key("sender"), nil, []byte("hello"))
	return err
}

func testDeviceRevoke(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	u, d, keep := Key("user"), Key("device"), Key("kept")
	dir2 := Key("device suite 2 directory")
	noErr(t, "PutDeviceList v1", s.PutDeviceList(ctx, u, 1, []byte("list 1"), [][]byte{u, d, keep}, keepAll))
	for i := range 3 {
		noErr(t, "Enqueue", enqueueErr(t, s, d))
		noErr(t, "Enqueue kept", enqueueErr(t, s, keep))
		_, err := s.PutKeyPackage(ctx, d, []byte{byte(i), 'k', 'p'}, false)
		noErr(t, "PutKeyPackage", err)
		_, err = s.PutKeyPackage(ctx, keep, []byte{byte(i), 'k', 'p'}, false)
		noErr(t, "PutKeyPackage kept", err)
	}
	_, err := s.PutKeyPackage(ctx, d, []byte("last"), true)
	noErr(t, "PutKeyPackage last resort", err)
	_, err = s.PutKeyPackage(ctx, dir2, []byte("suite 2"), false)
	noErr(t, "PutKeyPackage suite 2", err)
	noErr(t, "OpenSlot", s.OpenSlot(ctx, SlotID("of d"), d, time.Now().Add(time.Minute), 4))

	noErr(t, "PutDeviceList v2", s.PutDeviceList(ctx, u, 2, []byte("list 2"), [][]byte{u, keep}, func(prev []byte) (store.Revocation, error) {
		return store.Revocation{Devices: [][]byte{d}, Directories: [][]byte{d, dir2}}, nil
	}))
	for _, k := range [][]byte{d, keep, u} {
		revoked, err := s.Revoked(ctx, k)
		noErr(t, "Revoked", err)
		if revoked != bytes.Equal(k, d) {
			t.Fatalf("Revoked(%x) = %v", k[:4], revoked)
		}
	}
	msgs, err := s.Receive(ctx, d, 0, 10)
	noErr(t, "Receive", err)
	if len(msgs) != 0 {
		t.Fatalf("revoked device's queue holds %d messages", len(msgs))
	}
	wantCount(t, ctx, s, d, 0, false)
	wantCount(t, ctx, s, dir2, 0, false)
	wantCount(t, ctx, s, keep, 3, false)
	msgs, err = s.Receive(ctx, keep, 0, 10)
	noErr(t, "Receive kept", err)
	if len(msgs) != 3 {
		t.Fatalf("kept device's queue holds %d messages, want 3", len(msgs))
	}
	_, err = s.Slot(ctx, SlotID("of d"))
	wantErr(t, "revoked device's slot", err, store.ErrNoSlot)
	// Its queue's sequence numbers still never go back.
	seq, _, err := s.Enqueue(ctx, d, Key("sender"), nil, []byte("late"))
	noErr(t, "Enqueue after revocation", err)
	if seq != 4 {
		t.Fatalf("seq after revocation = %d, want 4", seq)
	}
}

func testDeviceListConcurrent(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	u := Key("user")
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.PutDeviceList(ctx, u, 1, []byte{byte(i)}, [][]byte{u}, keepAll)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrStaleVersion):
			t.Fatalf("concurrent publish: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d publishes of version 1 won, want 1", won)
	}
}

func testDevicesInvalid(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	short := make([]byte, 31)
	wantErr(t, "short user", s.PutDeviceList(ctx, short, 1, []byte("l"), nil, keepAll), store.ErrInvalid)
	wantErr(t, "short device", s.PutDeviceList(ctx, Key("u"), 1, []byte("l"), [][]byte{short}, keepAll), store.ErrInvalid)
	wantErr(t, "huge version", s.PutDeviceList(ctx, Key("u"), 1<<63, []byte("l"), nil, keepAll), store.ErrInvalid)
	_, _, err := s.DeviceList(ctx, short)
	wantErr(t, "DeviceList short", err, store.ErrInvalid)
	_, err = s.DeviceUsers(ctx, short)
	wantErr(t, "DeviceUsers short", err, store.ErrInvalid)
	_, err = s.Revoked(ctx, short)
	wantErr(t, "Revoked short", err, store.ErrInvalid)
	wantErr(t, "OpenSlot short", s.OpenSlot(ctx, short, Key("o"), time.Now().Add(time.Minute), 4), store.ErrInvalid)
	wantErr(t, "OpenSlot short opener", s.OpenSlot(ctx, SlotID("x"), short, time.Now().Add(time.Minute), 4), store.ErrInvalid)
	_, err = s.Slot(ctx, short)
	wantErr(t, "Slot short", err, store.ErrInvalid)
	wantErr(t, "PutSlotBox box 2", s.PutSlotBox(ctx, SlotID("x"), 2, []byte("p")), store.ErrInvalid)
	wantErr(t, "CloseSlot short", s.CloseSlot(ctx, short, Key("o")), store.ErrInvalid)
}

func testSlotBoxes(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id, opener := SlotID("a"), Key("opener")
	_, err := s.Slot(ctx, id)
	wantErr(t, "Slot never opened", err, store.ErrNoSlot)
	wantErr(t, "PutSlotBox never opened", s.PutSlotBox(ctx, id, store.BoxRequest, []byte("r")), store.ErrNoSlot)
	noErr(t, "OpenSlot", s.OpenSlot(ctx, id, opener, time.Now().Add(time.Minute), 4))
	wantErr(t, "OpenSlot again", s.OpenSlot(ctx, id, Key("other"), time.Now().Add(time.Minute), 4), store.ErrSlotExists)
	sl, err := s.Slot(ctx, id)
	noErr(t, "Slot", err)
	if !bytes.Equal(sl.Opener, opener) || sl.Request != nil || sl.Response != nil || time.Until(sl.Expires) < 30*time.Second {
		t.Fatalf("new slot %+v", sl)
	}
	noErr(t, "PutSlotBox request", s.PutSlotBox(ctx, id, store.BoxRequest, []byte("request")))
	wantErr(t, "PutSlotBox request again", s.PutSlotBox(ctx, id, store.BoxRequest, []byte("other")), store.ErrBoxFull)
	noErr(t, "PutSlotBox response", s.PutSlotBox(ctx, id, store.BoxResponse, []byte("response")))
	wantErr(t, "PutSlotBox response again", s.PutSlotBox(ctx, id, store.BoxResponse, []byte("other")), store.ErrBoxFull)
	sl, err = s.Slot(ctx, id)
	noErr(t, "Slot", err)
	if string(sl.Request) != "request" || string(sl.Response) != "response" {
		t.Fatalf("slot boxes %q %q", sl.Request, sl.Response)
	}
	wantErr(t, "CloseSlot by another", s.CloseSlot(ctx, id, Key("other")), store.ErrNoSlot)
	noErr(t, "CloseSlot", s.CloseSlot(ctx, id, opener))
	_, err = s.Slot(ctx, id)
	wantErr(t, "Slot closed", err, store.ErrNoSlot)
	wantErr(t, "CloseSlot twice", s.CloseSlot(ctx, id, opener), store.ErrNoSlot)
}

func testSlotLimit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	opener := Key("opener")
	exp := time.Now().Add(time.Minute)
	for i := range 4 {
		noErr(t, "OpenSlot", s.OpenSlot(ctx, SlotID(string(rune('a'+i))), opener, exp, 4))
	}
	wantErr(t, "fifth slot", s.OpenSlot(ctx, SlotID("e"), opener, exp, 4), store.ErrLimit)
	noErr(t, "another opener", s.OpenSlot(ctx, SlotID("f"), Key("other"), exp, 4))
	noErr(t, "CloseSlot", s.CloseSlot(ctx, SlotID("a"), opener))
	noErr(t, "after a close", s.OpenSlot(ctx, SlotID("e"), opener, exp, 4))
}

func testSlotExpire(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	opener := Key("opener")
	noErr(t, "OpenSlot short", s.OpenSlot(ctx, SlotID("short"), opener, time.Now().Add(300*time.Millisecond), 1))
	noErr(t, "OpenSlot long", s.OpenSlot(ctx, SlotID("long"), Key("other"), time.Now().Add(time.Hour), 1))
	time.Sleep(400 * time.Millisecond)
	_, err := s.Slot(ctx, SlotID("short"))
	wantErr(t, "expired slot", err, store.ErrNoSlot)
	wantErr(t, "put into an expired slot", s.PutSlotBox(ctx, SlotID("short"), store.BoxRequest, []byte("r")), store.ErrNoSlot)
	// An expired slot no longer counts against its opener, and its id may
	// be opened again.
	noErr(t, "reopen", s.OpenSlot(ctx, SlotID("short"), opener, time.Now().Add(time.Hour), 1))
	noErr(t, "CloseSlot", s.CloseSlot(ctx, SlotID("short"), opener))
	noErr(t, "OpenSlot short again", s.OpenSlot(ctx, SlotID("short2"), opener, time.Now().Add(100*time.Millisecond), 1))
	time.Sleep(200 * time.Millisecond)
	n, err := s.ExpireSlots(ctx, time.Now())
	noErr(t, "ExpireSlots", err)
	if n != 1 {
		t.Fatalf("ExpireSlots removed %d, want 1", n)
	}
	_, err = s.Slot(ctx, SlotID("long"))
	noErr(t, "unexpired slot", err)
}

// testDevicesReopen: lists, their devices, revocations and link slots
// survive a reopen.
func testDevicesReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := testCtx(t)
	u, d, gone := Key("user"), Key("device"), Key("gone")
	s := open(t)
	noErr(t, "PutDeviceList v1", s.PutDeviceList(ctx, u, 1, []byte("list 1"), [][]byte{u, d, gone}, keepAll))
	noErr(t, "PutDeviceList v2", s.PutDeviceList(ctx, u, 2, []byte("list 2"), [][]byte{u, d}, func([]byte) (store.Revocation, error) {
		return store.Revocation{Devices: [][]byte{gone}}, nil
	}))
	noErr(t, "OpenSlot", s.OpenSlot(ctx, SlotID("kept"), u, time.Now().Add(time.Hour), 4))
	noErr(t, "PutSlotBox", s.PutSlotBox(ctx, SlotID("kept"), store.BoxRequest, []byte("request")))
	noErr(t, "Close", s.Close())

	s = open(t)
	wantList(t, s, u, []byte("list 2"), 2)
	users, err := s.DeviceUsers(ctx, d)
	noErr(t, "DeviceUsers", err)
	if len(users) != 1 || !bytes.Equal(users[0], u) {
		t.Fatalf("users of d after reopen: %x", users)
	}
	revoked, err := s.Revoked(ctx, gone)
	noErr(t, "Revoked", err)
	if !revoked {
		t.Fatal("a revocation did not survive the reopen")
	}
	wantErr(t, "old version after reopen", s.PutDeviceList(ctx, u, 2, []byte("again"), [][]byte{u}, keepAll), store.ErrStaleVersion)
	sl, err := s.Slot(ctx, SlotID("kept"))
	noErr(t, "Slot after reopen", err)
	if string(sl.Request) != "request" || !bytes.Equal(sl.Opener, u) {
		t.Fatalf("slot after reopen: %+v", sl)
	}
	noErr(t, "Close", s.Close())
}

// testFanOutSkipsRevoked: a revoked device stays in a group's roster until
// a commit removes its leaf, but fanned-out messages no longer reach it.
func testFanOutSkipsRevoked(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("revoked member")
	u, d, bob := Key("user"), Key("device"), Key("bob")
	createGroup(t, s, g, 0, u, d, bob)
	noErr(t, "PutDeviceList v1", s.PutDeviceList(ctx, u, 1, []byte("list 1"), [][]byte{u, d}, keepAll))
	noErr(t, "PutDeviceList v2", s.PutDeviceList(ctx, u, 2, []byte("list 2"), [][]byte{u}, func([]byte) (store.Revocation, error) {
		return store.Revocation{Devices: [][]byte{d}}, nil
	}))
	fr, err := s.FanOut(ctx, g, bob, []byte("m"), payload(1), nil)
	noErr(t, "FanOut", err)
	if len(fr.Recipients) != 1 || !bytes.Equal(fr.Recipients[0], u) {
		t.Fatalf("FanOut recipients %x, want only the user's remaining device", fr.Recipients)
	}
	wantQueue(t, s, u, bob, payload(1))
	wantQueue(t, s, d, nil)
}

// RevokedCount counts the devices each user's lists revoked, and
// nobody else's.
func testRevokedCount(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	u, other := Key("counting user"), Key("other user")
	d1, d2, d3 := Key("rc device 1"), Key("rc device 2"), Key("rc device 3")
	wantN := func(user []byte, want int) {
		t.Helper()
		n, err := s.RevokedCount(ctx, user)
		noErr(t, "RevokedCount", err)
		if n != want {
			t.Fatalf("RevokedCount(%x) = %d, want %d", user[:4], n, want)
		}
	}
	wantN(u, 0)
	noErr(t, "PutDeviceList v1", s.PutDeviceList(ctx, u, 1, []byte("l1"), [][]byte{u, d1, d2}, keepAll))
	noErr(t, "PutDeviceList v2", s.PutDeviceList(ctx, u, 2, []byte("l2"), [][]byte{u}, func(prev []byte) (store.Revocation, error) {
		return store.Revocation{Devices: [][]byte{d1, d2}}, nil
	}))
	noErr(t, "PutDeviceList other", s.PutDeviceList(ctx, other, 1, []byte("o1"), [][]byte{other}, func(prev []byte) (store.Revocation, error) {
		return store.Revocation{Devices: [][]byte{d3}}, nil
	}))
	wantN(u, 2)
	wantN(other, 1)
	_, err := s.RevokedCount(ctx, u[:31])
	wantErr(t, "RevokedCount short", err, store.ErrInvalid)
}
