package devid

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// FuzzVerify feeds Verify hostile chains, seeded from real ones: it must
// return a device only for a chain that verifies, and otherwise one of its
// typed errors, never panic.
func FuzzVerify(f *testing.F) {
	u := newUser(f)
	dev, _ := newKey(f)
	chain := issue(f, u, dev)
	other := newUser(f)
	forged := issue(f, other, dev)
	f.Add(chain[0], chain[1], []byte(dev))
	f.Add(forged[0], chain[1], []byte(dev))
	f.Add(chain[1], chain[1], []byte(u.PublicKey()))
	f.Add(chain[0][:len(chain[0])/2], chain[1], []byte(dev))
	f.Fuzz(func(t *testing.T, devDER, userDER, key []byte) {
		d, err := Verify([][]byte{devDER, userDER}, key, t0)
		if err != nil {
			for _, want := range []error{ErrMalformed, ErrNotIssuedByUser, ErrWrongKey, ErrExpired, ErrWrongUsage} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		if !d.Key.Equal(ed25519.PublicKey(key)) || d.NotAfter.Before(t0) || d.NotBefore.After(t0.Add(time.Nanosecond)) {
			t.Fatalf("accepted device %+v for key %x", d, key)
		}
	})
}
