package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// Many concurrent writes share commits, and a call that fails inside a
// shared transaction takes only its own work with it: every successful call
// is stored exactly once, every failed one stores nothing and gets its own
// error.
func TestWriteBatchIsolation(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), store.Limits{MaxQueueDepth: 16})
	ctx := context.Background()
	full := storetest.Key("full")
	for i := range 16 {
		if _, _, err := s.Enqueue(ctx, full, nil, nil, []byte(fmt.Sprint("fill ", i))); err != nil {
			t.Fatal(err)
		}
	}
	g := storetest.GroupID("batch")
	alice := storetest.Key("alice")
	var roster [][]byte
	for i := range 200 {
		if i%4 == 2 {
			roster = append(roster, storetest.Key(fmt.Sprint("r", i)))
		}
	}
	storetest.CreateGroup(t, s, g, append([][]byte{alice}, roster...)...)
	if _, err := s.SubmitCommit(ctx, g, 0, alice, nil, []byte("c0"), nil, storetest.Deliver(append([][]byte{alice, full}, roster...), nil, nil)); err != nil {
		t.Fatal(err)
	}
	before := s.commits.Load()
	const calls = 200
	errs := make([]error, calls)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := storetest.Key(fmt.Sprint("r", i))
			switch i % 4 {
			case 0, 1: // succeeds
				_, _, errs[i] = s.Enqueue(ctx, r, alice, []byte("id"), []byte(fmt.Sprint("m", i)))
			case 2: // full queue: ErrLimit after its message row was inserted
				_, errs[i] = s.FanOut(ctx, g, alice, []byte(fmt.Sprint("f", i)), []byte("x"), nil)
			case 3: // stale commit
				_, errs[i] = s.SubmitCommit(ctx, g, 0, alice, []byte(fmt.Sprint("c", i)), []byte("late"), nil, storetest.Deliver([][]byte{alice, r}, [][]byte{r}, nil))
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		r := storetest.Key(fmt.Sprint("r", i))
		got, rerr := s.Receive(ctx, r, 0, 10)
		if rerr != nil {
			t.Fatal(rerr)
		}
		switch i % 4 {
		case 0, 1:
			if err != nil || len(got) != 1 || string(got[0].Payload) != fmt.Sprint("m", i) {
				t.Fatalf("call %d: %v; queue %+v, want its one message", i, err, got)
			}
		case 2:
			if !errors.Is(err, store.ErrLimit) || len(got) != 0 {
				t.Fatalf("call %d: %v; queue %+v, want ErrLimit and nothing stored", i, err, got)
			}
		case 3:
			if !errors.Is(err, store.ErrStaleEpoch) || len(got) != 0 {
				t.Fatalf("call %d: %v; queue %+v, want ErrStaleEpoch and nothing stored", i, err, got)
			}
		}
	}
	if got, err := s.Receive(ctx, full, 0, 100); err != nil || len(got) != 16 {
		t.Fatalf("full queue holds %d messages, %v; want 16", len(got), err)
	}
	if gs, err := s.GroupState(ctx, g, alice); err != nil || gs != (store.GroupState{Epoch: 1, LastSeq: 1, Members: 2 + len(roster)}) {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
	commits := s.commits.Load() - before
	t.Logf("%d calls in %d commits", calls, commits)
	if commits >= calls/2 {
		t.Fatalf("%d concurrent calls took %d commits: writes are not grouped", calls, commits)
	}
	// The failed ids were not remembered: they work now that there is room.
	if _, err := s.Ack(ctx, full, 16); err != nil {
		t.Fatal(err)
	}
	if fr, err := s.FanOut(ctx, g, alice, []byte("f2"), []byte("x"), nil); err != nil || fr.Duplicate {
		dup := fr.Duplicate
		t.Fatalf("FanOut with a previously failed id: dup %v, %v", dup, err)
	}
}

// A call whose context ends while it waits for the writer is not run.
func TestWriteCanceledWhileQueued(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), storetest.Limits())
	ctx, cancel := context.WithCancel(context.Background())
	r := storetest.Key("r")
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = s.Enqueue(ctx, r, nil, nil, []byte("m"))
		}()
	}
	cancel()
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, context.Canceled) && !errors.Is(err, store.ErrLimit):
			t.Fatalf("Enqueue: %v", err)
		}
	}
	got, err := s.Receive(context.Background(), r, 0, 100)
	if err != nil || len(got) != ok {
		t.Fatalf("%d enqueues succeeded but the queue holds %d (%v)", ok, len(got), err)
	}
}

// Enqueues run without savepoints, so a refused one must write nothing:
// refused alongside successful calls in shared transactions (a full queue,
// the strangers' message and byte quotas, a stranger's oversized first
// message), it leaves no number used, no count raised, no queue created and
// no client message id remembered, and the calls beside it are stored.
func TestWriteBatchRefusedEnqueues(t *testing.T) {
	lim := storetest.QuotaLimits()
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), lim)
	ctx := context.Background()
	direct := lim.MaxQueueDepth - lim.GroupReserve
	full, strange, big := storetest.Key("full"), storetest.Key("strange"), storetest.Key("big")
	stranger := storetest.Key("stranger")
	for i := range direct {
		if _, _, err := s.Enqueue(ctx, full, full, []byte(fmt.Sprint("fill ", i)), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	before := s.commits.Load()
	const calls = 200
	errs := make([]error, calls)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := []byte(fmt.Sprint("id ", i))
			switch i % 4 {
			case 0: // a full queue
				_, _, errs[i] = s.Enqueue(ctx, full, full, id, []byte("over"))
			case 1: // the strangers' share: the first three get in
				_, _, errs[i] = s.Enqueue(ctx, strange, stranger, id, []byte("s"))
			case 2: // more than the strangers' bytes, to a queue not yet made
				_, _, errs[i] = s.Enqueue(ctx, big, stranger, id, make([]byte, lim.MaxStrangerBytes+1))
			case 3: // fine
				r := storetest.Key(fmt.Sprint("r", i))
				_, _, errs[i] = s.Enqueue(ctx, r, r, id, []byte(fmt.Sprint("m", i)))
			}
		}()
	}
	close(start)
	wg.Wait()
	if commits := s.commits.Load() - before; commits >= calls/2 {
		t.Fatalf("%d concurrent calls took %d commits: writes are not grouped", calls, commits)
	}
	admitted := 0
	for i, err := range errs {
		switch i % 4 {
		case 0:
			if !errors.Is(err, store.ErrLimit) {
				t.Fatalf("call %d into a full queue: %v, want ErrLimit", i, err)
			}
		case 1:
			if err == nil {
				admitted++
			} else if !errors.Is(err, store.ErrQuota) {
				t.Fatalf("call %d from a stranger: %v, want ErrQuota or success", i, err)
			}
		case 2:
			if !errors.Is(err, store.ErrQuota) {
				t.Fatalf("call %d, oversized from a stranger: %v, want ErrQuota", i, err)
			}
		case 3:
			r := storetest.Key(fmt.Sprint("r", i))
			got, rerr := s.Receive(ctx, r, 0, 10)
			if err != nil || rerr != nil || len(got) != 1 || got[0].Seq != 1 || string(got[0].Payload) != fmt.Sprint("m", i) {
				t.Fatalf("call %d: %v; queue %+v (%v), want its one message", i, err, got, rerr)
			}
		}
	}
	if admitted != lim.MaxStrangerMessages {
		t.Fatalf("%d stranger's messages admitted, want %d", admitted, lim.MaxStrangerMessages)
	}
	var lastSeq, depth, count, size int
	if err := s.w.QueryRow(`SELECT last_seq, depth, stranger_count, stranger_bytes FROM queues WHERE recipient = ?`, strange).
		Scan(&lastSeq, &depth, &count, &size); err != nil || lastSeq != admitted || depth != admitted || count != admitted || size != admitted {
		t.Fatalf("queue of the stranger's messages: last seq %d, depth %d, %d from strangers, %d bytes (%v); want %d of each",
			lastSeq, depth, count, size, err, admitted)
	}
	if err := s.w.QueryRow(`SELECT last_seq, depth FROM queues WHERE recipient = ?`, full).Scan(&lastSeq, &depth); err != nil || lastSeq != direct || depth != direct {
		t.Fatalf("full queue: last seq %d, depth %d (%v); want %d", lastSeq, depth, err, direct)
	}
	var queues int
	if err := s.w.QueryRow(`SELECT count(*) FROM queues WHERE recipient = ?`, big).Scan(&queues); err != nil || queues != 0 {
		t.Fatalf("%d queues made by refused messages, %v", queues, err)
	}
	// The refused ids were not remembered: once there is room, each is a
	// new message with the next number.
	if _, err := s.Ack(ctx, full, 1); err != nil {
		t.Fatal(err)
	}
	if seq, dup, err := s.Enqueue(ctx, full, full, []byte("id 0"), []byte("now")); err != nil || dup || seq != uint64(direct+1) {
		t.Fatalf("Enqueue of a refused id = seq %d, duplicate %v, %v; want %d, false", seq, dup, err, direct+1)
	}
	var ids int
	if err := s.w.QueryRow(`SELECT count(*) FROM enqueue_dedup WHERE recipient IN (?, ?, ?)`, full, strange, big).Scan(&ids); err != nil || ids != direct+1+admitted {
		t.Fatalf("%d client message ids remembered, %v; want %d", ids, err, direct+1+admitted)
	}
}

// A call without a savepoint that fails other than by a refusal may have
// written: the batch runs again with savepoints, so that the call fails
// alone and leaves nothing, and the others are stored once. A refusal
// fails only its own call, and reaches the caller without the writer's
// marker.
func TestWriteBareFailure(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), storetest.Limits())
	ctx := context.Background()
	a, b, c := storetest.Key("a"), storetest.Key("b"), storetest.Key("c")
	appendTo := func(r []byte, then error) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			if _, err := s.appendTx(ctx, tx, r, nil, nil, []byte("m"), 1, 1); err != nil {
				return err
			}
			return then
		}
	}
	req := func(fn func(context.Context, *sql.Tx) error, bare bool) *writeReq {
		return &writeReq{ctx: ctx, op: "test", fn: fn, bare: bare, done: make(chan error, 1)}
	}
	boom := errors.New("boom")
	// The writer is idle between calls, so the test may run a batch itself.
	batch := []*writeReq{req(appendTo(a, nil), true), req(appendTo(b, boom), true), req(appendTo(a, nil), false)}
	s.runBatch(batch)
	for i, want := range []error{nil, boom, nil} {
		if err := <-batch[i].done; !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("call %d of a batch with a failed bare call: %v, want %v", i, err, want)
		}
	}
	refused := &refusal{fmt.Errorf("no room: %w", store.ErrLimit)}
	batch = []*writeReq{req(appendTo(c, nil), false), req(func(context.Context, *sql.Tx) error { return refused }, true)}
	s.runBatch(batch)
	if err := <-batch[0].done; err != nil {
		t.Fatalf("call beside a refusal: %v", err)
	}
	if err := <-batch[1].done; !errors.Is(err, store.ErrLimit) || errors.As(err, new(*refusal)) {
		t.Fatalf("refused call: %v (%T), want ErrLimit without the marker", err, err)
	}
	for r, want := range map[string]int{string(a): 2, string(b): 0, string(c): 1} {
		if got, err := s.Receive(ctx, []byte(r), 0, 10); err != nil || len(got) != want {
			t.Fatalf("queue of %x holds %d messages, %v; want %d", r[:4], len(got), err, want)
		}
	}
}
