package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// QuotaLimits is the configuration every store handed to RunQuotas must
// use: queues of 16 messages, 4 of them kept for group traffic, and room
// for 3 messages or 64 bytes from strangers.
func QuotaLimits() store.Limits {
	return store.Limits{MaxKeyPackages: 8, MaxQueueDepth: 16, GroupReserve: 4, MaxStrangerMessages: 3, MaxStrangerBytes: 64}
}

// RunQuotas runs the checks of "Quotas and expiry" in package store. open
// must return a new, empty store using QuotaLimits().
func RunQuotas(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Quota/StrangersShare", testStrangersShare},
		{"Quota/StrangersBytes", testStrangersBytes},
		{"Quota/GroupReserve", testGroupReserve},
		{"Quota/Expire", testExpire},
		{"Quota/DiskUsage", testDiskUsage},
		{"Quota/LastResortKeyPackage", testLastResortKeyPackage},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// testStrangersShare: any number of stranger identities share 3 messages
// of a queue; acknowledging frees their room; a sender in a group with the
// recipient is no stranger.
func testStrangersShare(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("r")
	for i := range 3 {
		_, _, err := s.Enqueue(ctx, r, Key(fmt.Sprintf("stranger %d", i)), nil, payload(i))
		noErr(t, "stranger enqueue", err)
	}
	_, _, err := s.Enqueue(ctx, r, Key("stranger 3"), nil, payload(3))
	wantErr(t, "fourth stranger", err, store.ErrQuota)
	_, _, err = s.Enqueue(ctx, r, nil, nil, payload(3))
	wantErr(t, "anonymous sender", err, store.ErrQuota)
	_, _, err = s.Enqueue(ctx, r, r, nil, payload(3))
	noErr(t, "the recipient itself", err)

	// A member of a group with r is no stranger.
	m := Key("member")
	_, err = s.SubmitCommit(ctx, GroupID("g"), 0, m, nil, commitBytes("g", 0), [][]byte{r}, nil, nil)
	noErr(t, "SubmitCommit", err)
	_, _, err = s.Enqueue(ctx, r, m, nil, payload(4))
	noErr(t, "member enqueue", err)

	msgs, err := s.Receive(ctx, r, 0, 100)
	noErr(t, "Receive", err)
	_, err = s.Ack(ctx, r, msgs[0].Seq)
	noErr(t, "Ack", err)
	_, _, err = s.Enqueue(ctx, r, Key("stranger 4"), nil, payload(5))
	noErr(t, "stranger enqueue after an ack", err)
	_, _, err = s.Enqueue(ctx, r, Key("stranger 5"), nil, payload(6))
	wantErr(t, "stranger past the share again", err, store.ErrQuota)
	// Another queue has its own share.
	_, _, err = s.Enqueue(ctx, Key("other"), Key("stranger 5"), nil, payload(6))
	noErr(t, "another queue", err)
}

func testStrangersBytes(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("r")
	_, _, err := s.Enqueue(ctx, r, Key("s1"), nil, bytes.Repeat([]byte{1}, 40))
	noErr(t, "40 bytes", err)
	_, _, err = s.Enqueue(ctx, r, Key("s2"), nil, bytes.Repeat([]byte{2}, 25))
	wantErr(t, "65 bytes in all", err, store.ErrQuota)
	_, _, err = s.Enqueue(ctx, r, Key("s2"), nil, bytes.Repeat([]byte{2}, 24))
	noErr(t, "64 bytes in all", err)
	n, err := s.Ack(ctx, r, 10)
	noErr(t, "Ack", err)
	if n != 2 {
		t.Fatalf("acked %d, want 2", n)
	}
	_, _, err = s.Enqueue(ctx, r, Key("s3"), nil, bytes.Repeat([]byte{3}, 64))
	noErr(t, "64 bytes after the ack", err)
}

// testGroupReserve: direct messages from a group member fill 12 of the 16
// places; group traffic still gets the last 4.
func testGroupReserve(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r, m := Key("r"), Key("member")
	g := GroupID("g")
	_, err := s.SubmitCommit(ctx, g, 0, m, nil, commitBytes("g", 0), [][]byte{r}, nil, nil)
	noErr(t, "SubmitCommit", err)
	for i := range 11 {
		_, _, err := s.Enqueue(ctx, r, m, nil, payload(i))
		noErr(t, fmt.Sprintf("direct %d", i), err)
	}
	_, _, err = s.Enqueue(ctx, r, m, nil, payload(11))
	wantErr(t, "direct into the reserve", err, store.ErrLimit)
	for i := range 3 {
		_, _, err := s.FanOut(ctx, g, m, nil, payload(20+i), [][]byte{r})
		noErr(t, fmt.Sprintf("group message %d", i), err)
	}
	_, err = s.SubmitCommit(ctx, g, 1, m, nil, commitBytes("g", 1), [][]byte{r}, nil, nil)
	noErr(t, "commit into the last place", err)
	_, _, err = s.FanOut(ctx, g, m, nil, payload(30), [][]byte{r})
	wantErr(t, "group message past the depth", err, store.ErrLimit)
}

// testExpire: Expire deletes what is older than the cutoff, acknowledged
// or not, and frees its room (depth and strangers' share).
func testExpire(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("r")
	for i := range 3 {
		_, _, err := s.Enqueue(ctx, r, Key(fmt.Sprintf("stranger %d", i)), nil, payload(i))
		noErr(t, "enqueue", err)
	}
	n, err := s.Expire(ctx, time.Now().Add(-time.Hour))
	noErr(t, "Expire (nothing old)", err)
	if n != 0 {
		t.Fatalf("Expire of nothing old deleted %d", n)
	}
	n, err = s.Expire(ctx, time.Now().Add(time.Second))
	noErr(t, "Expire", err)
	if n != 3 {
		t.Fatalf("Expire deleted %d, want 3", n)
	}
	msgs, err := s.Receive(ctx, r, 0, 100)
	noErr(t, "Receive", err)
	wantSeqs(t, msgs)
	for i := range 3 {
		_, _, err := s.Enqueue(ctx, r, Key(fmt.Sprintf("stranger %d", 10+i)), nil, payload(i))
		noErr(t, "enqueue after expiry", err)
	}
	msgs, err = s.Receive(ctx, r, 0, 100)
	noErr(t, "Receive", err)
	wantSeqs(t, msgs, 4, 5, 6)
}

func testDiskUsage(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	before, err := s.DiskUsage(ctx)
	noErr(t, "DiskUsage", err)
	big := make([]byte, 512<<10)
	rand.Read(big)
	_, _, err = s.Enqueue(ctx, Key("r"), Key("r"), nil, big)
	noErr(t, "enqueue", err)
	after, err := s.DiskUsage(ctx)
	noErr(t, "DiskUsage", err)
	if before <= 0 || after < before+int64(len(big))/2 {
		t.Fatalf("DiskUsage %d before and %d after storing %d bytes", before, after, len(big))
	}
}

func testLastResortKeyPackage(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("id")
	_, err := s.LastResortKeyPackage(ctx, id)
	wantErr(t, "none", err, store.ErrNoKeyPackage)
	_, err = s.PutKeyPackage(ctx, id, kp("id", 1), false)
	noErr(t, "put", err)
	_, err = s.LastResortKeyPackage(ctx, id)
	wantErr(t, "only consumable ones", err, store.ErrNoKeyPackage)
	_, err = s.PutKeyPackage(ctx, id, kp("id", 2), true)
	noErr(t, "put last resort", err)
	got, err := s.LastResortKeyPackage(ctx, id)
	noErr(t, "LastResortKeyPackage", err)
	if !bytes.Equal(got, kp("id", 2)) {
		t.Fatalf("got %q, want the last-resort package", got)
	}
	wantCount(t, ctx, s, id, 1, true)
}
