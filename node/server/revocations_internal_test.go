package server

import (
	"bytes"
	"testing"
	"time"
)

// A revocation is for ever: a later "not revoked" answer (a lookup that
// read the store before the revocation committed) does not undo it.
func TestRevocationCacheKeepsRevoked(t *testing.T) {
	var r revocations
	k := bytes.Repeat([]byte{7}, 32)
	now := time.Now()
	r.put(k, true, now)
	r.put(k, false, now.Add(time.Second))
	if revoked, ok := r.get(k, now.Add(time.Second)); !ok || !revoked {
		t.Fatalf("get after a stale answer: revoked %v, known %v", revoked, ok)
	}
	other := bytes.Repeat([]byte{8}, 32)
	r.put(other, false, now)
	if revoked, ok := r.get(other, now); !ok || revoked {
		t.Fatalf("unrevoked key: revoked %v, known %v", revoked, ok)
	}
	if _, ok := r.get(other, now.Add(revocationRecheck+time.Millisecond)); ok {
		t.Fatal("an unrevoked answer outlives revocationRecheck")
	}
}
