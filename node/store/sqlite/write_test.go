package sqlite

import (
	"context"
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
