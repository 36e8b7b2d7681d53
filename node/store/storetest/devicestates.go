package storetest

import (
	"bytes"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
)

// testDeviceStates: one lookup answers, per key and in order, whether it
// is revoked and which users list it; keys repeat, unknown keys are
// neither; bad keys and too many are ErrInvalid.
func testDeviceStates(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	u, v := Key("states user u"), Key("states user v")
	d, gone, both, nobody := Key("states d"), Key("states gone"), Key("states both"), Key("states nobody")
	noErr(t, "PutDeviceList u v1", s.PutDeviceList(ctx, u, 1, []byte("u 1"), [][]byte{u, d, gone, both}, keepAll))
	noErr(t, "PutDeviceList v v1", s.PutDeviceList(ctx, v, 1, []byte("v 1"), [][]byte{v, both}, keepAll))
	noErr(t, "PutDeviceList u v2", s.PutDeviceList(ctx, u, 2, []byte("u 2"), [][]byte{u, d, both}, func(prev []byte) (store.Revocation, error) {
		return store.Revocation{Devices: [][]byte{gone}}, nil
	}))
	users := [][]byte{u, v}
	if bytes.Compare(v, u) < 0 {
		users = [][]byte{v, u}
	}
	keys := [][]byte{d, gone, both, nobody, u, d}
	want := []store.DeviceState{
		{Users: [][]byte{u}},
		{Revoked: true},
		{Users: users},
		{},
		{Users: [][]byte{u}},
		{Users: [][]byte{u}},
	}
	got, err := s.DeviceStates(ctx, keys)
	noErr(t, "DeviceStates", err)
	if len(got) != len(want) {
		t.Fatalf("DeviceStates: %d states for %d keys", len(got), len(keys))
	}
	for i := range want {
		if got[i].Revoked != want[i].Revoked || !sameKeys(got[i].Users, want[i].Users) {
			t.Errorf("DeviceStates key %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Each key agrees with the one-key lookups.
	for i, k := range keys {
		revoked, err := s.Revoked(ctx, k)
		noErr(t, "Revoked", err)
		us, err := s.DeviceUsers(ctx, k)
		noErr(t, "DeviceUsers", err)
		if revoked != got[i].Revoked || !sameKeys(us, got[i].Users) {
			t.Errorf("key %d: Revoked %v DeviceUsers %x, DeviceStates %+v", i, revoked, us, got[i])
		}
	}

	if got, err := s.DeviceStates(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("DeviceStates of no keys: %v, %v", got, err)
	}
	many := make([][]byte, 1200) // more than one statement's worth
	for i := range many {
		many[i] = Key(string(rune('a'+i%26)) + string(rune(i)))
	}
	many[1100] = both
	got, err = s.DeviceStates(ctx, many)
	noErr(t, "DeviceStates of many", err)
	if len(got) != len(many) || !sameKeys(got[1100].Users, users) || got[0].Revoked || len(got[0].Users) != 0 {
		t.Fatalf("DeviceStates of many: %d states, key 1100 %+v", len(got), got[1100])
	}
	_, err = s.DeviceStates(ctx, [][]byte{d, make([]byte, 31)})
	wantErr(t, "DeviceStates short key", err, store.ErrInvalid)
	_, err = s.DeviceStates(ctx, make([][]byte, store.MaxDeviceStates+1))
	wantErr(t, "DeviceStates too many", err, store.ErrInvalid)
}

func sameKeys(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
