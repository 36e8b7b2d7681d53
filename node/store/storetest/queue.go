package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// enqueueN enqueues n messages payload(first) .. payload(first+n-1) from
// sender without client message ids and checks their sequence numbers.
func enqueueN(t *testing.T, s store.Store, recipient, sender []byte, first, n int, wantFirstSeq uint64) {
	t.Helper()
	ctx := testCtx(t)
	for i := range n {
		seq, dup, err := s.Enqueue(ctx, recipient, sender, nil, payload(first+i))
		noErr(t, "Enqueue", err)
		if dup || seq != wantFirstSeq+uint64(i) {
			t.Fatalf("Enqueue #%d = (seq %d, duplicate %v), want (%d, false)", i, seq, dup, wantFirstSeq+uint64(i))
		}
	}
}

func testQueueFIFO(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	bob, alice := Key("bob"), Key("alice")
	before := time.Now()
	for i := 1; i <= 5; i++ {
		seq, dup, err := s.Enqueue(ctx, bob, alice, []byte(fmt.Sprintf("id-%d", i)), payload(i))
		noErr(t, "Enqueue", err)
		if seq != uint64(i) || dup {
			t.Fatalf("Enqueue #%d = (seq %d, duplicate %v), want (%d, false)", i, seq, dup, i)
		}
	}
	after := time.Now()
	got, err := s.Receive(ctx, bob, 0, 100)
	noErr(t, "Receive", err)
	wantSeqs(t, got, 1, 2, 3, 4, 5)
	for i, m := range got {
		wantMessage(t, m, uint64(i+1), alice, []byte(fmt.Sprintf("id-%d", i+1)), payload(i+1))
		if m.EnqueuedAt.Before(before.Add(-time.Second)) || m.EnqueuedAt.After(after.Add(time.Second)) {
			t.Fatalf("EnqueuedAt = %v, want between %v and %v", m.EnqueuedAt, before, after)
		}
	}
	// Receive does not delete.
	again, err := s.Receive(ctx, bob, 0, 100)
	noErr(t, "Receive again", err)
	wantSeqs(t, again, 1, 2, 3, 4, 5)

	// An anonymous sender (empty) and an empty payload are stored as such.
	seq, _, err := s.Enqueue(ctx, bob, nil, nil, nil)
	noErr(t, "anonymous Enqueue", err)
	got, err = s.Receive(ctx, bob, 5, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got, seq)
	wantMessage(t, got[0], 6, nil, nil, nil)
}

func testQueueReceiveAfter(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("cursor")
	enqueueN(t, s, r, Key("s"), 1, 6, 1)
	for _, tc := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 2, []uint64{1, 2}},
		{2, 2, []uint64{3, 4}},
		{4, 100, []uint64{5, 6}},
		{5, 1, []uint64{6}},
		{6, 10, nil},
		{100, 10, nil},
	} {
		got, err := s.Receive(ctx, r, tc.after, tc.limit)
		noErr(t, "Receive", err)
		wantSeqs(t, got, tc.want...)
		for _, m := range got {
			if !bytes.Equal(m.Payload, payload(int(m.Seq))) {
				t.Fatalf("seq %d has payload %q, want %q", m.Seq, m.Payload, payload(int(m.Seq)))
			}
		}
	}
	// A recipient that never had a message has an empty queue, not an error.
	got, err := s.Receive(ctx, Key("nobody"), 0, 10)
	noErr(t, "Receive of an unknown recipient", err)
	wantSeqs(t, got)
}

func testQueueAck(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("ack")
	enqueueN(t, s, r, Key("s"), 1, 5, 1)
	n, err := s.Ack(ctx, r, 3)
	noErr(t, "Ack 3", err)
	if n != 3 {
		t.Fatalf("Ack(3) deleted %d, want 3", n)
	}
	got, err := s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got, 4, 5)
	// Idempotent: acking again, or lower, deletes nothing.
	for _, upTo := range []uint64{3, 2, 0} {
		n, err = s.Ack(ctx, r, upTo)
		noErr(t, "repeated Ack", err)
		if n != 0 {
			t.Fatalf("repeated Ack(%d) deleted %d, want 0", upTo, n)
		}
	}
	got, err = s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got, 4, 5)
	// Acking beyond the last message deletes what is there.
	n, err = s.Ack(ctx, r, 100)
	noErr(t, "Ack 100", err)
	if n != 2 {
		t.Fatalf("Ack(100) deleted %d, want 2", n)
	}
	got, err = s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got)
	// Acking an unknown recipient is not an error.
	n, err = s.Ack(ctx, Key("nobody"), 10)
	noErr(t, "Ack of an unknown recipient", err)
	if n != 0 {
		t.Fatalf("Ack of an unknown recipient deleted %d", n)
	}
}

func testQueueSeqNeverReused(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("reuse")
	enqueueN(t, s, r, Key("s"), 1, 3, 1)
	_, err := s.Ack(ctx, r, 3)
	noErr(t, "Ack", err)
	enqueueN(t, s, r, Key("s"), 4, 2, 4)
	_, err = s.Drain(ctx, r)
	noErr(t, "Drain", err)
	enqueueN(t, s, r, Key("s"), 6, 1, 6)
	got, err := s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got, 6)
}

func testQueueDrain(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("drain")
	sender := Key("s")
	enqueueN(t, s, r, sender, 1, 4, 1)
	_, err := s.Ack(ctx, r, 1)
	noErr(t, "Ack", err)
	got, err := s.Drain(ctx, r)
	noErr(t, "Drain", err)
	wantSeqs(t, got, 2, 3, 4)
	for _, m := range got {
		wantMessage(t, m, m.Seq, sender, nil, payload(int(m.Seq)))
	}
	got, err = s.Drain(ctx, r)
	noErr(t, "second Drain", err)
	wantSeqs(t, got)
	got, err = s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive after Drain", err)
	wantSeqs(t, got)
	got, err = s.Drain(ctx, Key("nobody"))
	noErr(t, "Drain of an unknown recipient", err)
	wantSeqs(t, got)
	// A drained queue has room again.
	enqueueN(t, s, r, sender, 5, Limits().MaxQueueDepth, 5)
}

func testQueueDuplicate(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r, sender := Key("dup"), Key("dup-sender")
	seq1, dup, err := s.Enqueue(ctx, r, sender, []byte("m1"), payload(1))
	noErr(t, "Enqueue", err)
	if dup {
		t.Fatal("first Enqueue reported a duplicate")
	}
	enqueueN(t, s, r, sender, 2, 1, seq1+1)
	seq, dup, err := s.Enqueue(ctx, r, sender, []byte("m1"), []byte("other bytes"))
	noErr(t, "repeated Enqueue", err)
	if !dup || seq != seq1 {
		t.Fatalf("repeated Enqueue = (seq %d, duplicate %v), want (%d, true)", seq, dup, seq1)
	}
	got, err := s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got, seq1, seq1+1)
	wantMessage(t, got[0], seq1, sender, []byte("m1"), payload(1))
	// The next new message still gets the next number.
	seq, dup, err = s.Enqueue(ctx, r, sender, []byte("m3"), payload(3))
	noErr(t, "Enqueue", err)
	if dup || seq != seq1+2 {
		t.Fatalf("Enqueue after a duplicate = (seq %d, duplicate %v), want (%d, false)", seq, dup, seq1+2)
	}
	// An empty client message id is never deduplicated.
	a, _, err := s.Enqueue(ctx, r, sender, nil, payload(9))
	noErr(t, "Enqueue", err)
	b, dup, err := s.Enqueue(ctx, r, sender, nil, payload(9))
	noErr(t, "Enqueue", err)
	if dup || a == b {
		t.Fatalf("Enqueue without client message id deduplicated: seqs %d %d, duplicate %v", a, b, dup)
	}
}

func testQueueDuplicateAfterAck(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r, sender := Key("dup-ack"), Key("dup-ack-sender")
	seq1, _, err := s.Enqueue(ctx, r, sender, []byte("once"), payload(1))
	noErr(t, "Enqueue", err)
	_, err = s.Ack(ctx, r, seq1)
	noErr(t, "Ack", err)
	seq, dup, err := s.Enqueue(ctx, r, sender, []byte("once"), payload(1))
	noErr(t, "repeated Enqueue after Ack", err)
	if !dup || seq != seq1 {
		t.Fatalf("repeated Enqueue after Ack = (seq %d, duplicate %v), want (%d, true)", seq, dup, seq1)
	}
	got, err := s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got)
	// Also after a drain.
	seq2, _, err := s.Enqueue(ctx, r, sender, []byte("twice"), payload(2))
	noErr(t, "Enqueue", err)
	_, err = s.Drain(ctx, r)
	noErr(t, "Drain", err)
	seq, dup, err = s.Enqueue(ctx, r, sender, []byte("twice"), payload(2))
	noErr(t, "repeated Enqueue after Drain", err)
	if !dup || seq != seq2 {
		t.Fatalf("repeated Enqueue after Drain = (seq %d, duplicate %v), want (%d, true)", seq, dup, seq2)
	}
	got, err = s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got)
}

func testQueueDedupKey(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r1, r2 := Key("key-r1"), Key("key-r2")
	s1, s2 := Key("key-s1"), Key("key-s2")
	id := []byte("same id")
	for _, c := range []struct {
		r, s []byte
	}{{r1, s1}, {r1, s2}, {r2, s1}, {r1, nil}} {
		_, dup, err := s.Enqueue(ctx, c.r, c.s, id, payload(1))
		noErr(t, "Enqueue", err)
		if dup {
			t.Fatalf("Enqueue to %x from %x reported a duplicate of another (recipient, sender)", c.r[:4], c.s)
		}
	}
	_, dup, err := s.Enqueue(ctx, r1, nil, id, payload(1))
	noErr(t, "Enqueue", err)
	if !dup {
		t.Fatal("repeated anonymous Enqueue with a client message id was not deduplicated")
	}
}

func testQueueDepthLimit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r, sender := Key("depth"), Key("depth-sender")
	max := Limits().MaxQueueDepth
	seq1, _, err := s.Enqueue(ctx, r, sender, []byte("first"), payload(1))
	noErr(t, "Enqueue", err)
	enqueueN(t, s, r, sender, 2, max-1, 2)
	_, _, err = s.Enqueue(ctx, r, sender, nil, payload(0))
	wantErr(t, "Enqueue into a full queue", err, store.ErrLimit)
	_, _, err = s.Enqueue(ctx, r, sender, []byte("new"), payload(0))
	wantErr(t, "Enqueue with an id into a full queue", err, store.ErrLimit)
	// A repeat of a stored message stores nothing, so it is answered.
	seq, dup, err := s.Enqueue(ctx, r, sender, []byte("first"), payload(1))
	noErr(t, "repeated Enqueue into a full queue", err)
	if !dup || seq != seq1 {
		t.Fatalf("repeated Enqueue = (seq %d, duplicate %v), want (%d, true)", seq, dup, seq1)
	}
	// The refused message left no trace: the next one takes the next number.
	_, err = s.Ack(ctx, r, 1)
	noErr(t, "Ack", err)
	enqueueN(t, s, r, sender, max+1, 1, uint64(max+1))
	_, _, err = s.Enqueue(ctx, r, sender, nil, payload(0))
	wantErr(t, "Enqueue into a full queue again", err, store.ErrLimit)
	// The id of a refused enqueue was not remembered.
	_, err = s.Ack(ctx, r, 2)
	noErr(t, "Ack", err)
	seq, dup, err = s.Enqueue(ctx, r, sender, []byte("new"), payload(0))
	noErr(t, "Enqueue of a once refused id", err)
	if dup || seq != uint64(max+2) {
		t.Fatalf("Enqueue of a once refused id = (seq %d, duplicate %v), want (%d, false)", seq, dup, max+2)
	}
	// Other queues are not affected.
	enqueueN(t, s, Key("depth-other"), sender, 1, 1, 1)
}

func testQueueRecipientsSeparate(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	a, b := Key("sep-a"), Key("sep-b")
	enqueueN(t, s, a, nil, 1, 3, 1)
	enqueueN(t, s, b, nil, 1, 2, 1)
	_, err := s.Ack(ctx, a, 10)
	noErr(t, "Ack", err)
	got, err := s.Receive(ctx, b, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got, 1, 2)
}

func testQueueConcurrentEnqueue(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("concurrent-q")
	const writers, each = 8, 2
	var (
		mu   sync.Mutex
		seqs []uint64
		wg   sync.WaitGroup
		errs = make(chan error, writers*each)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				seq, _, err := s.Enqueue(ctx, r, Key(fmt.Sprint("w", w)), []byte(fmt.Sprint(i)), payload(w*each+i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seqs = append(seqs, seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, "concurrent Enqueue", err)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("concurrent Enqueue gave seqs %v, want 1..%d each once", seqs, writers*each)
		}
	}
	got, err := s.Receive(ctx, r, 0, 100)
	noErr(t, "Receive", err)
	if len(got) != writers*each {
		t.Fatalf("Receive got %d messages, want %d", len(got), writers*each)
	}
}

func testQueueInvalid(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	good := Key("good")
	for name, k := range badKeys() {
		_, _, err := s.Enqueue(ctx, k, good, nil, payload(1))
		wantErr(t, "Enqueue to recipient "+name, err, store.ErrInvalid)
		_, err = s.Receive(ctx, k, 0, 10)
		wantErr(t, "Receive of recipient "+name, err, store.ErrInvalid)
		_, err = s.Ack(ctx, k, 1)
		wantErr(t, "Ack of recipient "+name, err, store.ErrInvalid)
		_, err = s.Drain(ctx, k)
		wantErr(t, "Drain of recipient "+name, err, store.ErrInvalid)
		if len(k) != 0 {
			_, _, err = s.Enqueue(ctx, good, k, nil, payload(1))
			wantErr(t, "Enqueue from sender "+name, err, store.ErrInvalid)
		}
	}
	for _, limit := range []int{0, -1, math.MinInt} {
		_, err := s.Receive(ctx, good, 0, limit)
		wantErr(t, fmt.Sprintf("Receive with limit %d", limit), err, store.ErrInvalid)
	}
	got, err := s.Receive(ctx, good, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got)
}

func testQueueExtremeCursors(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r := Key("extreme")
	enqueueN(t, s, r, nil, 1, 3, 1)
	got, err := s.Receive(ctx, r, math.MaxUint64, 10)
	noErr(t, "Receive after MaxUint64", err)
	wantSeqs(t, got)
	got, err = s.Receive(ctx, r, 0, math.MaxInt)
	noErr(t, "Receive with limit MaxInt", err)
	wantSeqs(t, got, 1, 2, 3)
	n, err := s.Ack(ctx, r, math.MaxUint64)
	noErr(t, "Ack MaxUint64", err)
	if n != 3 {
		t.Fatalf("Ack(MaxUint64) deleted %d, want 3", n)
	}
	enqueueN(t, s, r, nil, 4, 1, 4)
}

func testClosed(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("closed")
	_, err := s.PutKeyPackage(ctx, id, kp("c", 0), false)
	noErr(t, "PutKeyPackage", err)
	noErr(t, "Close", s.Close())
	noErr(t, "second Close", s.Close())
	_, err = s.PutKeyPackage(ctx, id, kp("c", 1), false)
	wantErr(t, "PutKeyPackage after Close", err, store.ErrClosed)
	_, err = s.TakeKeyPackage(ctx, id)
	wantErr(t, "TakeKeyPackage after Close", err, store.ErrClosed)
	_, err = s.CountKeyPackages(ctx, id)
	wantErr(t, "CountKeyPackages after Close", err, store.ErrClosed)
	_, _, err = s.Enqueue(ctx, id, id, nil, payload(1))
	wantErr(t, "Enqueue after Close", err, store.ErrClosed)
	_, err = s.Receive(ctx, id, 0, 1)
	wantErr(t, "Receive after Close", err, store.ErrClosed)
	_, err = s.Ack(ctx, id, 1)
	wantErr(t, "Ack after Close", err, store.ErrClosed)
	_, err = s.Drain(ctx, id)
	wantErr(t, "Drain after Close", err, store.ErrClosed)
}

func testReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := testCtx(t)
	id, r, sender := Key("reopen-id"), Key("reopen-r"), Key("reopen-s")

	s := open(t)
	_, err := s.PutKeyPackage(ctx, id, kp("r", 1), false)
	noErr(t, "PutKeyPackage", err)
	_, err = s.PutKeyPackage(ctx, id, kp("r", 2), false)
	noErr(t, "PutKeyPackage", err)
	_, err = s.PutKeyPackage(ctx, id, kp("r-lr", 0), true)
	noErr(t, "PutKeyPackage last resort", err)
	for i := 1; i <= 4; i++ {
		_, _, err := s.Enqueue(ctx, r, sender, []byte(fmt.Sprint("id", i)), payload(i))
		noErr(t, "Enqueue", err)
	}
	_, err = s.Ack(ctx, r, 2)
	noErr(t, "Ack", err)
	noErr(t, "Close", s.Close())

	s = open(t)
	wantCount(t, ctx, s, id, 2, true)
	got, err := s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive after reopen", err)
	wantSeqs(t, got, 3, 4)
	for _, m := range got {
		wantMessage(t, m, m.Seq, sender, []byte(fmt.Sprint("id", m.Seq)), payload(int(m.Seq)))
	}
	// Acked ids are still known; sequence numbers continue.
	seq, dup, err := s.Enqueue(ctx, r, sender, []byte("id1"), payload(1))
	noErr(t, "repeated Enqueue after reopen", err)
	if !dup || seq != 1 {
		t.Fatalf("repeated Enqueue after reopen = (seq %d, duplicate %v), want (1, true)", seq, dup)
	}
	enqueueN(t, s, r, sender, 5, 1, 5)
	_, err = s.TakeKeyPackage(ctx, id)
	noErr(t, "TakeKeyPackage", err)
	noErr(t, "Close", s.Close())

	s = open(t)
	defer s.Close()
	wantCount(t, ctx, s, id, 1, true)
	got, err = s.Receive(ctx, r, 0, 10)
	noErr(t, "Receive after second reopen", err)
	wantSeqs(t, got, 3, 4, 5)
}

// LastSeq is the last number a queue handed out, by a direct enqueue or a
// group's fan-out; acks and drains do not lower it, and a queue that never
// had a message has 0.
func testQueueLastSeq(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	r, sender := Key("last"), Key("s")
	want := func(what string, n uint64) {
		t.Helper()
		got, err := s.LastSeq(ctx, r)
		noErr(t, "LastSeq "+what, err)
		if got != n {
			t.Fatalf("LastSeq %s = %d, want %d", what, got, n)
		}
	}
	want("of a queue that never had a message", 0)
	enqueueN(t, s, r, sender, 1, 3, 1)
	want("after three enqueues", 3)
	g := GroupID("last seq")
	CreateGroup(t, s, g, sender, r)
	for i := range 2 {
		if _, err := s.FanOut(ctx, g, sender, fmt.Appendf(nil, "f%d", i), payload(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	want("after two fan-outs", 5)
	_, err := s.Ack(ctx, r, 4)
	noErr(t, "Ack", err)
	want("after an ack", 5)
	_, err = s.Drain(ctx, r)
	noErr(t, "Drain", err)
	want("after a drain", 5)
	if _, err := s.LastSeq(ctx, []byte("short")); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("LastSeq of a malformed key: %v, want ErrInvalid", err)
	}
}
