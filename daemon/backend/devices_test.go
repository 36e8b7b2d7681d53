package backend

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/internal/devid"
)

func TestMatchDevice(t *testing.T) {
	k := func(b byte, rest byte) ed25519.PublicKey {
		p := bytes.Repeat([]byte{rest}, 32)
		p[0] = b
		return p
	}
	l := &devid.DeviceList{Devices: []ed25519.PublicKey{k(0xaa, 1), k(0xaa, 2), k(0xbb, 3)}}
	if d, err := matchDevice(l, FormatKey(k(0xaa, 2))); err != nil || !d.Equal(k(0xaa, 2)) {
		t.Fatalf("whole key: %x, %v", d, err)
	}
	if d, err := matchDevice(l, "BB030303"); err != nil || !d.Equal(k(0xbb, 3)) {
		t.Fatalf("prefix in upper case: %x, %v", d, err)
	}
	for text, want := range map[string]error{
		"aa010101": nil,
		"aa":       ErrInvalidArgument,
		"zzzzzzzz": ErrInvalidArgument,
		"cc030303": ErrDeviceNotFound,
	} {
		_, err := matchDevice(l, text)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", text, err, want)
		}
	}
	amb := &devid.DeviceList{Devices: []ed25519.PublicKey{k(0xaa, 1), k(0xaa, 1^0)}}
	amb.Devices[1] = append(ed25519.PublicKey{}, amb.Devices[0]...)
	amb.Devices[1][31] = 9
	if _, err := matchDevice(amb, "aa010101"); !errors.Is(err, ErrAmbiguousDevice) {
		t.Errorf("ambiguous prefix: %v", err)
	}
}

func TestDeviceIntentsRoundTrip(t *testing.T) {
	d := bytes.Repeat([]byte{7}, 32)
	for _, p := range []commitPlan{
		{kind: intentAddDevices, peers: []ed25519.PublicKey{d}},
		{kind: intentRemoveDevice, peers: []ed25519.PublicKey{d}},
	} {
		b, err := p.encode()
		if err != nil {
			t.Fatal(err)
		}
		q, err := decodeCommitPlan(b)
		if err != nil || q.kind != p.kind || len(q.peers) != 1 || !bytes.Equal(q.peers[0], d) {
			t.Fatalf("%s: %+v, %v", p.kind, q, err)
		}
	}
	for _, p := range []commitPlan{{kind: intentAddDevices}, {kind: intentRemoveDevice}, {kind: intentRemoveDevice, peers: []ed25519.PublicKey{d, d}}} {
		if _, err := p.encode(); !errors.Is(err, errBadIntent) {
			t.Errorf("%s with %d devices: %v", p.kind, len(p.peers), err)
		}
	}
}
