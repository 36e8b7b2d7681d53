package link

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newSecret(t testing.TB) Secret {
	t.Helper()
	s, err := NewCode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func derive(t testing.TB, s Secret) *Keys {
	t.Helper()
	k, err := Derive(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCodeRoundTrip(t *testing.T) {
	for range 200 {
		s := newSecret(t)
		code := s.String()
		if !strings.HasPrefix(code, CodePrefix) || len(code) != len(CodePrefix)+26+6 {
			t.Fatalf("code %q", code)
		}
		for _, typed := range []string{code, strings.ToUpper(code), " " + CodePrefix + strings.ReplaceAll(code[len(CodePrefix):], "-", "") + "\n", CodePrefix + strings.ReplaceAll(code[len(CodePrefix):], "-", " ")} {
			got, err := ParseCode(typed)
			if err != nil {
				t.Fatalf("ParseCode(%q): %v", typed, err)
			}
			if got != s {
				t.Fatalf("ParseCode(%q) = %x, want %x", typed, got, s)
			}
		}
	}
}

func TestParseCodeRefuses(t *testing.T) {
	s := newSecret(t)
	code := s.String()
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	next := alphabet[strings.IndexByte(alphabet, code[len(code)-1])+1]
	for name, text := range map[string]string{
		"empty":        "",
		"no prefix":    code[len(CodePrefix):],
		"other prefix": "qpq-lnk-" + code[len(CodePrefix):],
		"short":        code[:len(code)-1],
		"long":         code + "a",
		"bad char":     code[:len(code)-2] + "1" + code[len(code)-1:],
		"unicode":      code[:len(code)-2] + "é",
		"huge":         code + strings.Repeat(" ", 200),
		// the last character of 26 holds 2 bits; a character with the
		// unused low bits set is another spelling of a code
		"not canonical": code[:len(code)-1] + string(next),
	} {
		if _, err := ParseCode(text); !errors.Is(err, ErrCode) {
			t.Errorf("%s: ParseCode(%q) = %v, want ErrCode", name, text, err)
		}
	}
}

func TestDeriveSeparates(t *testing.T) {
	s := newSecret(t)
	k1, k2 := derive(t, s), derive(t, s)
	if k1.Slot != k2.Slot || k1.request != k2.request || k1.response != k2.response {
		t.Fatal("Derive is not deterministic")
	}
	if k1.Slot == [SlotSize]byte(k1.request) || k1.request == k1.response {
		t.Fatal("slot and keys are not separated")
	}
	k3 := derive(t, newSecret(t))
	if k3.Slot == k1.Slot {
		t.Fatal("two codes, one slot")
	}
}

func TestSealOpen(t *testing.T) {
	k := derive(t, newSecret(t))
	msg := []byte("hello device")
	sealed, err := k.Seal(BoxRequest, msg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, msg) {
		t.Fatal("plaintext visible")
	}
	got, err := k.Open(BoxRequest, sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := k.Seal(BoxRequest, msg)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are equal: nonce reused")
	}
	// The node (or anyone without the code) changes, moves or makes up a
	// message: every one fails with ErrSealed.
	other := derive(t, newSecret(t))
	flipped := append([]byte{}, sealed...)
	flipped[len(flipped)-1] ^= 1
	nonce := append([]byte{}, sealed...)
	nonce[0] ^= 1
	fake := make([]byte, 100)
	rand.Read(fake)
	for name, c := range map[string]struct {
		k   *Keys
		box uint8
		b   []byte
	}{
		"other box":  {k, BoxResponse, sealed},
		"other code": {other, BoxRequest, sealed},
		"flipped":    {k, BoxRequest, flipped},
		"nonce":      {k, BoxRequest, nonce},
		"made up":    {k, BoxRequest, fake},
		"short":      {k, BoxRequest, sealed[:20]},
		"empty":      {k, BoxRequest, nil},
		"truncated":  {k, BoxRequest, sealed[:len(sealed)-1]},
	} {
		if _, err := c.k.Open(c.box, c.b); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: Open = %v, want ErrSealed", name, err)
		}
	}
	if _, err := k.Seal(BoxRequest, make([]byte, MaxPayload)); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized Seal = %v", err)
	}
	if _, err := k.Seal(7, msg); err == nil {
		t.Error("Seal to box 7 worked")
	}
}

func TestRequest(t *testing.T) {
	k := derive(t, newSecret(t))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	b, err := MarshalRequest(k, priv, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRequest(k, b)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Device.Equal(pub) || r.Name != "laptop" {
		t.Fatalf("request %+v", r)
	}
	// Replayed at another code's slot: the signature binds the slot.
	if _, err := ParseRequest(derive(t, newSecret(t)), b); !errors.Is(err, ErrRequest) {
		t.Errorf("replayed request: %v, want ErrRequest", err)
	}
	// Another device key put in: the signature is the first one's.
	swapped := append([]byte{}, b...)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	copy(swapped[1:], other)
	if _, err := ParseRequest(k, swapped); !errors.Is(err, ErrRequest) {
		t.Errorf("swapped device: %v, want ErrRequest", err)
	}
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"format":    append([]byte{2}, b[1:]...),
		"truncated": b[:len(b)-1],
		"trailing":  append(append([]byte{}, b...), 0),
		"name len":  func() []byte { c := append([]byte{}, b...); c[33] = 200; return c }(),
	} {
		if _, err := ParseRequest(k, bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := MarshalRequest(k, priv, strings.Repeat("x", MaxDeviceName+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("long name: %v", err)
	}
}

// fixture is a user, a device it certified, and a response naming them.
func fixture(t testing.TB) (*devid.User, ed25519.PublicKey, *Response) {
	t.Helper()
	u, err := devid.GenerateUser(t0)
	if err != nil {
		t.Fatal(err)
	}
	dev, _, _ := ed25519.GenerateKey(rand.Reader)
	chain, err := u.IssueDevice(dev, "phone", t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	contact, _, _ := ed25519.GenerateKey(rand.Reader)
	return u, dev, &Response{
		User:       u.PublicKey(),
		Chain:      chain,
		DeviceList: []byte("a signed list, opaque here"),
		Contacts:   []Contact{{Name: "bob", Key: contact, Verified: true}, {Name: "carol", Key: u.PublicKey()}},
		Groups:     []Group{{ID: bytes.Repeat([]byte{1}, 16), Name: "family"}, {ID: bytes.Repeat([]byte{2}, 16)}},
	}
}

func TestResponseRoundTrip(t *testing.T) {
	_, dev, r := fixture(t)
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := got.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs: %v", err)
	}
	if !got.User.Equal(r.User) || len(got.Contacts) != 2 || !got.Contacts[0].Verified || got.Contacts[1].Verified ||
		got.Contacts[0].Name != "bob" || len(got.Groups) != 2 || got.Groups[0].Name != "family" || got.Groups[1].Name != "" {
		t.Fatalf("parsed %+v", got)
	}
	d, err := got.CheckChain(dev, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !d.User.Equal(r.User) || !d.Key.Equal(dev) || d.Name != "phone" {
		t.Fatalf("device %+v", d)
	}
	empty := &Response{User: r.User, Chain: r.Chain, DeviceList: r.DeviceList}
	eb, err := empty.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseResponse(eb); err != nil {
		t.Fatal(err)
	}
}

func TestResponseChainRefused(t *testing.T) {
	u, dev, r := fixture(t)
	// A chain issued by another key than the response's user.
	mallory, _ := devid.GenerateUser(t0)
	forged, _ := mallory.IssueDevice(dev, "phone", t0, 0)
	cases := map[string]*Response{
		"issued by another user": {User: u.PublicKey(), Chain: forged, DeviceList: r.DeviceList},
		"user cert swapped":      {User: u.PublicKey(), Chain: [][]byte{forged[0], r.Chain[1]}, DeviceList: r.DeviceList},
		"for another device": {User: u.PublicKey(), Chain: func() [][]byte {
			o, _, _ := ed25519.GenerateKey(rand.Reader)
			c, _ := u.IssueDevice(o, "x", t0, 0)
			return c
		}(), DeviceList: r.DeviceList},
	}
	for name, c := range cases {
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseResponse(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.CheckChain(dev, t0); !errors.Is(err, ErrWrongUser) {
			t.Errorf("%s: %v, want ErrWrongUser", name, err)
		}
	}
	if _, err := r.CheckChain(dev, t0.Add(2*devid.DefaultDeviceLifetime)); !errors.Is(err, ErrWrongUser) || !errors.Is(err, devid.ErrExpired) {
		t.Errorf("expired: %v", err)
	}
}

func TestParseResponseRefuses(t *testing.T) {
	_, _, r := fixture(t)
	b, _ := r.Marshal()
	mut := func(f func(c []byte) []byte) []byte { return f(append([]byte{}, b...)) }
	for name, bad := range map[string][]byte{
		"empty":        nil,
		"format":       mut(func(c []byte) []byte { c[0] = 9; return c }),
		"cert count":   mut(func(c []byte) []byte { c[33] = 3; return c }),
		"cert len 0":   mut(func(c []byte) []byte { c[34], c[35] = 0, 0; return c }),
		"cert len big": mut(func(c []byte) []byte { c[34], c[35] = 0xff, 0xff; return c }),
		"truncated":    b[:len(b)-1],
		"trailing":     append(append([]byte{}, b...), 0),
		"oversized":    make([]byte, MaxPayload+1),
	} {
		if _, err := ParseResponse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	bad := *r
	bad.Contacts = []Contact{{Name: "\xff", Key: r.User}}
	if _, err := bad.Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-UTF-8 name: %v", err)
	}
	bad = *r
	bad.Groups = make([]Group, MaxGroups+1)
	if _, err := bad.Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("too many groups: %v", err)
	}
}

// A refusal opens only under the code, names the refused device, and is
// never taken for a response.
func TestRefusal(t *testing.T) {
	s, err := NewCode()
	if err != nil {
		t.Fatal(err)
	}
	k, err := Derive(s)
	if err != nil {
		t.Fatal(err)
	}
	dev, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	body, err := MarshalRefusal(dev)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k.Seal(BoxResponse, body)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k.Open(BoxResponse, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := IsRefusal(pt, dev); !ok || err != nil {
		t.Fatalf("refusal for its device: %v %v", ok, err)
	}
	if _, err := IsRefusal(pt, other); !errors.Is(err, ErrMalformed) {
		t.Fatalf("refusal for another device: %v, want ErrMalformed", err)
	}
	if _, err := ParseResponse(pt); !errors.Is(err, ErrMalformed) {
		t.Fatalf("refusal parsed as a response: %v", err)
	}
	if ok, err := IsRefusal([]byte{format, 1, 2}, dev); ok || err != nil {
		t.Fatalf("a response taken for a refusal: %v %v", ok, err)
	}
	if _, err := MarshalRefusal(dev[:5]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short device key: %v", err)
	}
}
