package link

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

// fuzzKeys is one fixed code, so that seeds sealed under it open.
var fuzzKeys = func() *Keys {
	k, err := Derive(Secret{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	if err != nil {
		panic(err)
	}
	return k
}()

// FuzzParseRequest: a hostile request (from anyone who reached the slot)
// is refused with a typed error or parses to a request whose signature
// verified and which re-encodes to the same bytes.
func FuzzParseRequest(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	good, _ := MarshalRequest(fuzzKeys, priv, "laptop")
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(fuzzKeys, b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRequest) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(r.Device) != ed25519.PublicKeySize || len(b) != 1+32+1+len(r.Name)+64 {
			t.Fatalf("accepted %+v from %d bytes", r, len(b))
		}
	})
}

// FuzzParseResponse: a hostile response is refused with ErrMalformed or
// parses to one that re-encodes to exactly its bytes; CheckChain on it
// fails typed or certifies the device for the response's user.
func FuzzParseResponse(f *testing.F) {
	u, dev, r := fixture(f)
	good, _ := r.Marshal()
	f.Add(good, []byte(dev))
	f.Add(good, []byte(u.PublicKey()))
	f.Add(good[:40], []byte(dev))
	empty, _ := (&Response{User: r.User, Chain: r.Chain, DeviceList: []byte{1}}).Marshal()
	f.Add(empty, []byte(dev))
	f.Fuzz(func(t *testing.T, b, device []byte) {
		p, err := ParseResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, err := p.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed response re-encodes differently (%v)", err)
		}
		d, err := p.CheckChain(ed25519.PublicKey(device), t0)
		if err != nil {
			if !errors.Is(err, ErrWrongUser) {
				t.Fatalf("untyped chain error: %v", err)
			}
			return
		}
		if !d.User.Equal(p.User) || !d.Key.Equal(ed25519.PublicKey(device)) {
			t.Fatalf("certified %+v for user %x device %x", d, []byte(p.User), device)
		}
	})
}

// FuzzParseCode: text is a code only if it reads back as the same code.
func FuzzParseCode(f *testing.F) {
	s := Secret{9, 8, 7}
	f.Add(s.String())
	f.Add("qpq-link-")
	f.Add("QPQ-LINK-AAAA")
	f.Fuzz(func(t *testing.T, text string) {
		got, err := ParseCode(text)
		if err != nil {
			if !errors.Is(err, ErrCode) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, err := ParseCode(got.String())
		if err != nil || again != got {
			t.Fatalf("code %q does not read back", got.String())
		}
	})
}

// FuzzOpen: bytes not sealed under the code never open. (The seed is
// sealed again in each fuzz process, with another nonce, so what may open
// is named by its plaintext, not its bytes.)
func FuzzOpen(f *testing.F) {
	sealed, _ := fuzzKeys.Seal(BoxResponse, []byte("x"))
	f.Add(sealed, uint8(1))
	f.Add(sealed, uint8(0))
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, box uint8) {
		pt, err := fuzzKeys.Open(box, b)
		if err == nil && !(box == BoxResponse && string(pt) == "x") {
			t.Fatalf("opened %d bytes for box %d", len(b), box)
		}
	})
}
