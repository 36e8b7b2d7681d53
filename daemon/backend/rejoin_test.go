package backend

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

func TestControlRoundTrip(t *testing.T) {
	gid := bytes.Repeat([]byte{9}, 16)
	for _, c := range []struct {
		kind byte
		body []byte
	}{{controlGroupInfoRequest, bytes.Repeat([]byte{1}, rejoinRequestSize)}, {controlGroupInfo, []byte("group info")}} {
		kind, g, body, err := parseControl(appendControl(nil, c.kind, gid, c.body))
		if err != nil || kind != c.kind || !bytes.Equal(g, gid) || !bytes.Equal(body, c.body) {
			t.Errorf("kind %d: %d %x %q %v", c.kind, kind, g, body, err)
		}
	}
	for _, bad := range [][]byte{
		nil,
		[]byte("QPQC"),
		appendControl(nil, 3, gid, nil),
		appendControl(nil, controlGroupInfoRequest, gid[:5], nil),
		appendControl(nil, controlGroupInfoRequest, gid, []byte("x")),
		append([]byte("QPQC"), make([]byte, maxControlSize)...),
	} {
		if _, _, _, err := parseControl(bad); !errors.Is(err, errBadControl) {
			t.Errorf("parseControl(%.20x): %v", bad, err)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	gid := bytes.Repeat([]byte{9}, 16)
	f.Add(appendControl(nil, controlGroupInfoRequest, gid, make([]byte, rejoinRequestSize)))
	f.Add(appendControl(nil, controlGroupInfo, gid, []byte{0, 1, 0, 4}))
	f.Add([]byte("QPQC\x01\x10"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, g, body, err := parseControl(b)
		if err != nil {
			return
		}
		if again := appendControl(nil, kind, g, body); !bytes.Equal(again, b) {
			t.Fatalf("round trip of %x gave %x", b, again)
		}
	})
}

// A member answers a GroupInfo request only when it is signed by a member
// of its tree, and then queues the sealed GroupInfo to that member alone.
func TestGroupInfoRequestChecks(t *testing.T) {
	r := receiveSetup(t)
	ctx := context.Background()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.PublicKey().Bytes()
	peerID := r.peerKey.Public().(ed25519.PublicKey)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	good := append(bytes.Clone(pub), ed25519.Sign(r.peerKey, rejoinSigned(r.group, pub))...)
	forged := append(bytes.Clone(pub), ed25519.Sign(stranger, rejoinSigned(r.group, pub))...)
	cases := []struct {
		name    string
		sender  []byte
		body    []byte
		applied bool
	}{
		{"stranger", stranger.Public().(ed25519.PublicKey), forged, false},
		{"forged signature", peerID, forged, false},
		{"member", peerID, good, true},
	}
	for i, c := range cases {
		applied, err := r.apply(uint64(10+i), appendControl(nil, controlGroupInfoRequest, r.group, c.body), c.sender)
		if err != nil || applied != c.applied {
			t.Errorf("%s: applied %v, %v; want %v", c.name, applied, err, c.applied)
		}
	}
	// The member asking again at once is not answered again: a repeated
	// request cannot make the members flood the node.
	for i := range 5 {
		if _, err := r.apply(uint64(13+i), appendControl(nil, controlGroupInfoRequest, r.group, good), peerID); err != nil {
			t.Fatal(err)
		}
	}
	var items []store.OutboxItem
	r.b.view(ctx, func(tx *store.Tx) (err error) { items, err = tx.PendingOutbox(10); return })
	if len(items) != 1 || len(items[0].Recipients) != 1 || !bytes.Equal(items[0].Recipients[0], peerID) {
		t.Fatalf("outbox: %+v", items)
	}
	kind, gid, sealed, err := parseControl(items[0].Payload)
	if err != nil || kind != controlGroupInfo || !bytes.Equal(gid, r.group) {
		t.Fatalf("answer: %d %x %v", kind, gid, err)
	}
	kem, kdf, aead := rejoinSuite()
	sk, _ := kem.NewPrivateKey(k.Bytes())
	gi, err := hpke.Open(sk, kdf, aead, append([]byte(rejoinSealLabel), r.group...), sealed)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := mls.PeekMessage(gi); err != nil || h.WireFormat != mls.WireFormatGroupInfo || !bytes.Equal(h.GroupID, r.group) {
		t.Fatalf("sealed answer is not the group's GroupInfo: %v %v", h, err)
	}
	// An answer nobody asked for is rejected.
	if applied, err := r.apply(30, appendControl(nil, controlGroupInfo, r.group, sealed), peerID); err != nil || applied {
		t.Errorf("unrequested answer: %v %v", applied, err)
	}
}
