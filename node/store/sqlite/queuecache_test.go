package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// cacheGroup is a group of a sender and three recipients on s.
func cacheGroup(t *testing.T, s *Store) (g, sender []byte, rs [][]byte) {
	t.Helper()
	g, sender = storetest.GroupID("cache"), storetest.Key("cache sender")
	rs = [][]byte{storetest.Key("cache a"), storetest.Key("cache b"), storetest.Key("cache c")}
	if err := s.CreateGroup(context.Background(), g, sender, 0, []byte("view"), append([][]byte{sender}, rs...)); err != nil {
		t.Fatal(err)
	}
	return g, sender, rs
}

// queueOnDisk is a queue's last number and depth as the database alone
// says (see queuecache.go), beside the entries it holds.
func queueOnDisk(t *testing.T, s *Store, r []byte) (last, depth, entries int64) {
	t.Helper()
	var l, d, top, n int64
	err := s.w.QueryRow(`SELECT q.last_seq, q.depth, coalesce(max(e.seq), 0), count(e.seq)
FROM queues q LEFT JOIN entries e ON e.qid = q.qid WHERE q.recipient = ? GROUP BY q.qid`, r).Scan(&l, &d, &top, &n)
	if err != nil {
		t.Fatal(err)
	}
	if top > l {
		d += top - l
		l = top
	}
	return l, d, n
}

// nextSeqs fans one message out and returns each recipient's number for it.
func nextSeqs(t *testing.T, s *Store, g, sender []byte, rs [][]byte, label string) []uint64 {
	t.Helper()
	ctx := context.Background()
	if _, err := s.FanOut(ctx, g, sender, []byte(label), []byte(label), nil); err != nil {
		t.Fatalf("FanOut %s: %v", label, err)
	}
	out := make([]uint64, len(rs))
	for i, r := range rs {
		msgs, err := s.Receive(ctx, r, 0, 1<<20)
		if err != nil || len(msgs) == 0 || string(msgs[len(msgs)-1].Payload) != label {
			t.Fatalf("queue %d after FanOut %s: %d messages, %v", i, label, len(msgs), err)
		}
		out[i] = msgs[len(msgs)-1].Seq
	}
	return out
}

// Numbers handed out by fan-outs, direct enqueues, acks, drains and expiry
// continue strictly above everything handed out before, across reopening
// the store (which loses the writer's memory, as a crash does), and the
// depths on disk match the entries.
func TestQueueNumbersAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.db")
	s := openTestStore(t, path, store.Limits{})
	g, sender, rs := cacheGroup(t, s)
	high := make([]uint64, len(rs)) // the highest number handed out per queue
	check := func(seqs []uint64, what string) {
		t.Helper()
		for i, seq := range seqs {
			if seq <= high[i] {
				t.Fatalf("%s: queue %d got number %d, not above %d", what, i, seq, high[i])
			}
			high[i] = seq
		}
	}
	reopen := func() {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openTestStore(t, path, store.Limits{})
	}
	steps := []struct {
		name string
		do   func()
	}{
		{"ack all", func() {
			for i, r := range rs {
				if _, err := s.Ack(ctx, r, high[i]); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"ack some", func() {
			if _, err := s.Ack(ctx, rs[0], high[0]-1); err != nil {
				t.Fatal(err)
			}
		}},
		{"drain", func() {
			if _, err := s.Drain(ctx, rs[1]); err != nil {
				t.Fatal(err)
			}
		}},
		{"enqueue", func() {
			id := []byte(fmt.Sprint("direct ", high[2]))
			seq, _, err := s.Enqueue(ctx, rs[2], sender, id, []byte("direct"))
			if err != nil || seq <= high[2] {
				t.Fatalf("Enqueue = %d, %v; want above %d", seq, err, high[2])
			}
			high[2] = seq
			// A retry gets the number the message was stored with.
			again, dup, err := s.Enqueue(ctx, rs[2], sender, id, []byte("direct"))
			if err != nil || !dup || again != seq {
				t.Fatalf("Enqueue retried = %d, %v, %v; want duplicate %d", again, dup, err, seq)
			}
			if msgs, err := s.Receive(ctx, rs[2], seq-1, 1); err != nil || len(msgs) != 1 || msgs[0].Seq != seq {
				t.Fatalf("Receive of the direct message = %+v, %v; want number %d", msgs, err, seq)
			}
		}},
		{"expire", func() {
			if _, err := s.Expire(ctx, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}},
		{"nothing", func() {}},
	}
	round := 0
	for _, first := range steps {
		for _, second := range steps {
			for _, reopenBetween := range []bool{false, true} {
				round++
				check(nextSeqs(t, s, g, sender, rs, fmt.Sprint("m", round, "a")), "fan-out")
				check(nextSeqs(t, s, g, sender, rs, fmt.Sprint("m", round, "b")), "fan-out")
				first.do()
				if reopenBetween {
					reopen()
				}
				second.do()
				check(nextSeqs(t, s, g, sender, rs, fmt.Sprint("m", round, "c")), first.name+", "+second.name)
				reopen()
				for i, r := range rs {
					last, depth, entries := queueOnDisk(t, s, r)
					if uint64(last) != high[i] || depth != entries {
						t.Fatalf("after %s, %s: queue %d on disk: last %d, depth %d, %d entries; want last %d",
							first.name, second.name, i, last, depth, entries, high[i])
					}
				}
			}
		}
	}
}

// A full queue refuses a fan-out before and after a reopen, and takes one
// again once a message is acknowledged.
func TestFanOutDepthLimitAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.db")
	limits := store.Limits{MaxQueueDepth: 4}
	s := openTestStore(t, path, limits)
	g, sender, rs := cacheGroup(t, s)
	for i := range 4 {
		if _, err := s.FanOut(ctx, g, sender, []byte(fmt.Sprint(i)), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	full := func(what string) {
		t.Helper()
		if _, err := s.FanOut(ctx, g, sender, []byte("over "+what), []byte("x"), nil); !errors.Is(err, store.ErrLimit) {
			t.Fatalf("FanOut to full queues %s = %v, want ErrLimit", what, err)
		}
	}
	full("before the reopen")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path, limits)
	full("after the reopen")
	if _, _, err := s.Enqueue(ctx, rs[0], sender, nil, []byte("direct")); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("Enqueue to a full queue after the reopen = %v, want ErrLimit", err)
	}
	for _, r := range rs {
		if n, err := s.Ack(ctx, r, 1); err != nil || n != 1 {
			t.Fatalf("Ack = %d, %v", n, err)
		}
	}
	if _, err := s.FanOut(ctx, g, sender, []byte("after ack"), []byte("x"), nil); err != nil {
		t.Fatalf("FanOut after an ack: %v", err)
	}
	full("again")
}

// A fan-out rolled back, alone in its transaction or by its savepoint in a
// batch, leaves the numbers and depths as they were.
func TestFanOutRolledBackKeepsNumbers(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), store.Limits{MaxQueueDepth: 5})
	g, sender, rs := cacheGroup(t, s)
	before := nextSeqs(t, s, g, sender, rs, "first")
	failed := errors.New("fail after the fan-out")
	fanThenFail := func(ctx context.Context, tx *sql.Tx) error {
		if err := s.fanOutTx(ctx, tx, rs, sender, nil, []byte("rolled back"), 1, 99); err != nil {
			return err
		}
		return failed
	}
	// Alone: the transaction is rolled back.
	if err := s.write(ctx, "test", fanThenFail); !errors.Is(err, failed) {
		t.Fatalf("write = %v", err)
	}
	// In a batch: the call's savepoint is rolled back, the other call commits.
	answers := []*writeReq{
		{ctx: ctx, op: "ok", fn: func(ctx context.Context, tx *sql.Tx) error { return nil }, done: make(chan error, 1)},
		{ctx: ctx, op: "fail", fn: fanThenFail, done: make(chan error, 1)},
	}
	// The writer is idle: run the batch here as it would.
	s.runBatch(answers)
	if err := <-answers[0].done; err != nil {
		t.Fatal(err)
	}
	if err := <-answers[1].done; !errors.Is(err, failed) {
		t.Fatalf("batched call = %v", err)
	}
	after := nextSeqs(t, s, g, sender, rs, "second")
	for i := range rs {
		if after[i] != before[i]+1 {
			t.Fatalf("queue %d: number %d after %d and two rolled-back fan-outs, want %d", i, after[i], before[i], before[i]+1)
		}
		if _, depth, entries := queueOnDisk(t, s, rs[i]); depth != 2 || entries != 2 {
			t.Fatalf("queue %d: depth %d, %d entries; want 2", i, depth, entries)
		}
	}
	// The depth limit counts only what was committed: three more fit.
	for i := range 3 {
		if _, err := s.FanOut(ctx, g, sender, []byte(fmt.Sprint("fill ", i)), []byte("x"), nil); err != nil {
			t.Fatalf("FanOut %d into room left by the rolled-back ones: %v", i, err)
		}
	}
	if _, err := s.FanOut(ctx, g, sender, []byte("over"), []byte("x"), nil); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("FanOut past the limit = %v, want ErrLimit", err)
	}
}

// Two handles on one file: numbers a handle remembers are dropped when the
// other commits, so none repeats.
func TestQueueCacheTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	a := openTestStore(t, path, store.Limits{})
	b := openTestStore(t, path, store.Limits{})
	g, sender, rs := cacheGroup(t, a)
	seen := map[uint64]bool{}
	for i := range 6 {
		s := a
		if i%2 == 1 {
			s = b
		}
		for _, seq := range nextSeqs(t, s, g, sender, rs[:2], fmt.Sprint("m", i))[:1] {
			if seen[seq] {
				t.Fatalf("number %d handed out twice", seq)
			}
			seen[seq] = true
		}
	}
}

// Past its bound the writer's memory writes the rows it holds and starts
// over; the numbers go on as before.
func TestQueueCacheBound(t *testing.T) {
	old := maxCachedQueues
	maxCachedQueues = 4
	t.Cleanup(func() { maxCachedQueues = old })
	ctx := context.Background()
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), store.Limits{})
	g, sender, rs := cacheGroup(t, s)
	g2, others := storetest.GroupID("cache 2"), [][]byte{storetest.Key("cache d"), storetest.Key("cache e"), storetest.Key("cache f")}
	if err := s.CreateGroup(ctx, g2, sender, 0, []byte("view"), append([][]byte{sender}, others...)); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		// Each fan-out loads three queues beside three held: the rows
		// of the other group are written first.
		for _, grp := range []struct {
			id      []byte
			members [][]byte
			other   [][]byte
		}{{g, rs, others}, {g2, others, rs}} {
			for i, seq := range nextSeqs(t, s, grp.id, sender, grp.members, fmt.Sprint("m", round)) {
				if seq != uint64(round+1) {
					t.Fatalf("round %d: queue %d got number %d", round, i, seq)
				}
			}
			if round == 0 && bytes.Equal(grp.id, g) {
				continue
			}
			want := int64(round) // the other group's fan-out of the round before
			if bytes.Equal(grp.id, g2) {
				want++ // this round's
			}
			for i, r := range grp.other {
				var last, depth int64
				if err := s.w.QueryRow(`SELECT last_seq, depth FROM queues WHERE recipient = ?`, r).Scan(&last, &depth); err != nil ||
					last != want || depth != want {
					t.Fatalf("round %d: row of queue %d: last %d, depth %d, %v; want %d", round, i, last, depth, err, want)
				}
			}
		}
	}
	if n, err := s.Ack(ctx, rs[0], 5); err != nil || n != 5 {
		t.Fatalf("Ack = %d, %v; want 5", n, err)
	}
}
