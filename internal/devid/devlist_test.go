package devid

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

func signedTestList(t testing.TB, u *User, version uint64, devices ...ed25519.PublicKey) []byte {
	t.Helper()
	l := &DeviceList{User: u.PublicKey(), Version: version, Devices: devices, Created: t0}
	b, err := l.Sign(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeviceListRoundTrip(t *testing.T) {
	u := newUser(t)
	d1, _ := newKey(t)
	d2, _ := newKey(t)
	b := signedTestList(t, u, 7, d1, u.PublicKey(), d2)
	l, err := ParseDeviceList(b)
	if err != nil {
		t.Fatal(err)
	}
	if !l.User.Equal(u.PublicKey()) || l.Version != 7 || !l.Created.Equal(t0) || len(l.Devices) != 3 {
		t.Fatalf("parsed %+v", l)
	}
	for i := 1; i < len(l.Devices); i++ {
		if bytes.Compare(l.Devices[i-1], l.Devices[i]) >= 0 {
			t.Fatal("devices not sorted")
		}
	}
	for _, d := range []ed25519.PublicKey{d1, d2, u.PublicKey()} {
		if !l.Has(d) {
			t.Fatalf("list lacks %x", []byte(d))
		}
	}
	stranger, _ := newKey(t)
	if l.Has(stranger) || l.Has(d1[:31]) {
		t.Fatal("list has a stranger")
	}
	// Canonical: the parsed list signs to the same bytes (Ed25519 is
	// deterministic).
	again, err := l.Sign(u.Key)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-signed list differs: %v", err)
	}
	next, _ := ParseDeviceList(signedTestList(t, u, 8, u.PublicKey(), d2))
	if r := l.Removed(next); len(r) != 1 || !r[0].Equal(d1) {
		t.Fatalf("removed %x", r)
	}
	if imp := ImplicitDeviceList(u.PublicKey()); !imp.Has(u.PublicKey()) || imp.Version != 0 || len(imp.Devices) != 1 {
		t.Fatalf("implicit list %+v", imp)
	}
}

func TestDeviceListRefusesForgeries(t *testing.T) {
	u := newUser(t)
	other := newUser(t)
	d1, _ := newKey(t)
	b := signedTestList(t, u, 1, u.PublicKey(), d1)

	// Another user's key cannot sign U's list.
	l := &DeviceList{User: u.PublicKey(), Version: 2, Devices: []ed25519.PublicKey{d1}}
	if _, err := l.Sign(other.Key); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("signed with another key: %v", err)
	}
	// Every changed byte breaks the signature or the form.
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		_, err := ParseDeviceList(c)
		if err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
		if !errors.Is(err, ErrListSignature) && !errors.Is(err, ErrListMalformed) && !errors.Is(err, ErrListBounds) {
			t.Fatalf("byte %d: untyped %v", i, err)
		}
	}
	// A list re-signed by another key under U's name.
	c := bytes.Clone(b)
	body := c[:len(c)-ed25519.SignatureSize]
	copy(c[len(body):], ed25519.Sign(other.Key, signedList(body)))
	if _, err := ParseDeviceList(c); !errors.Is(err, ErrListSignature) {
		t.Fatalf("other key's signature: %v", err)
	}
	// A signature without the label does not verify.
	copy(c[len(body):], ed25519.Sign(u.Key, body))
	if _, err := ParseDeviceList(c); !errors.Is(err, ErrListSignature) {
		t.Fatalf("unlabelled signature: %v", err)
	}
	// Trailing bytes and truncation.
	if _, err := ParseDeviceList(append(bytes.Clone(b), 0)); !errors.Is(err, ErrListMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := ParseDeviceList(b[:len(b)-1]); !errors.Is(err, ErrListMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := ParseDeviceList(nil); !errors.Is(err, ErrListMalformed) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := ParseDeviceList(make([]byte, MaxDeviceListSize+1)); !errors.Is(err, ErrListMalformed) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestDeviceListBounds(t *testing.T) {
	u := newUser(t)
	d1, _ := newKey(t)
	if _, err := (&DeviceList{User: u.PublicKey()}).Sign(u.Key); !errors.Is(err, ErrListBounds) {
		t.Fatalf("empty list: %v", err)
	}
	many := make([]ed25519.PublicKey, MaxDevices+1)
	for i := range many {
		many[i], _ = newKey(t)
	}
	if _, err := (&DeviceList{User: u.PublicKey(), Devices: many}).Sign(u.Key); !errors.Is(err, ErrListBounds) {
		t.Fatalf("17 devices: %v", err)
	}
	full := signedTestList(t, u, 1, many[:MaxDevices]...)
	if l, err := ParseDeviceList(full); err != nil || len(l.Devices) != MaxDevices {
		t.Fatalf("16 devices: %v", err)
	}
	if _, err := (&DeviceList{User: u.PublicKey(), Devices: []ed25519.PublicKey{d1, d1}}).Sign(u.Key); !errors.Is(err, ErrListMalformed) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := (&DeviceList{User: u.PublicKey(), Devices: []ed25519.PublicKey{d1[:16]}}).Sign(u.Key); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("short key: %v", err)
	}
	// An unsorted or duplicated list signed by hand is refused.
	d2, _ := newKey(t)
	lo, hi := d1, d2
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	for _, order := range [][]ed25519.PublicKey{{hi, lo}, {lo, lo}} {
		body := []byte{listFormat}
		body = append(body, u.PublicKey()...)
		body = append(body, make([]byte, 16)...)
		body = append(body, 2)
		body = append(body, order[0]...)
		body = append(body, order[1]...)
		raw := append(body, ed25519.Sign(u.Key, signedList(body))...)
		if _, err := ParseDeviceList(raw); !errors.Is(err, ErrListMalformed) {
			t.Fatalf("order %x: %v", order, err)
		}
	}
	// A count of zero or above the bound, signed, is refused as bounds.
	for _, n := range []byte{0, MaxDevices + 1} {
		body := []byte{listFormat}
		body = append(body, u.PublicKey()...)
		body = append(body, make([]byte, 16)...)
		body = append(body, n)
		for range int(n) {
			k, _ := newKey(t)
			body = append(body, k...)
		}
		raw := append(body, ed25519.Sign(u.Key, signedList(body))...)
		if _, err := ParseDeviceList(raw); !errors.Is(err, ErrListBounds) {
			t.Fatalf("count %d: %v", n, err)
		}
	}
}

// FuzzParseDeviceList feeds ParseDeviceList hostile lists seeded from real
// signed ones: it returns a list only when U signed exactly those bytes,
// and otherwise a typed error.
func FuzzParseDeviceList(f *testing.F) {
	u := newUser(f)
	d1, _ := newKey(f)
	d2, _ := newKey(f)
	f.Add(signedTestList(f, u, 1, u.PublicKey()))
	f.Add(signedTestList(f, u, 3, u.PublicKey(), d1, d2))
	f.Add(signedTestList(f, u, 1<<40, d2))
	f.Add([]byte{listFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseDeviceList(b)
		if err != nil {
			if !errors.Is(err, ErrListMalformed) && !errors.Is(err, ErrListSignature) && !errors.Is(err, ErrListBounds) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		body := b[:len(b)-ed25519.SignatureSize]
		if !ed25519.Verify(l.User, signedList(body), b[len(body):]) || len(l.Devices) == 0 || len(l.Devices) > MaxDevices {
			t.Fatalf("accepted %+v", l)
		}
	})
}
