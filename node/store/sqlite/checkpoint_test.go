package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// With the writer's own checkpoint out of reach, the background checkpoints
// alone keep the WAL short while far more than it holds is written, every
// message stays readable, and all of them are still there after a reopen.
func TestBackgroundCheckpoints(t *testing.T) {
	gap, backstop := checkpointGap, backstopCheckpointPages
	checkpointGap, backstopCheckpointPages = 10*time.Millisecond, 1<<20
	t.Cleanup(func() { checkpointGap, backstopCheckpointPages = gap, backstop })

	path := filepath.Join(t.TempDir(), "node.db")
	s := openTestStore(t, path, store.Limits{MaxQueueDepth: 1 << 20})
	ctx := context.Background()
	const (
		senders = 16
		each    = 120
		size    = 24 << 10 // 16 senders × 120 × 24 KiB: 45 MiB
	)
	var (
		wg      sync.WaitGroup
		maxWAL  int64
		walMu   sync.Mutex
		errOnce sync.Once
		failed  error
	)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := storetest.Key(fmt.Sprint("r", i))
			for n := range each {
				if _, _, err := s.Enqueue(ctx, to, nil, nil, payloadOf(i, n, size)); err != nil {
					errOnce.Do(func() { failed = err })
					return
				}
				if fi, err := os.Stat(path + "-wal"); err == nil {
					walMu.Lock()
					maxWAL = max(maxWAL, fi.Size())
					walMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	if s.ckpts.Load() == 0 {
		t.Fatal("no background checkpoint ran")
	}
	written := int64(senders * each * size)
	if maxWAL > written/3 {
		t.Fatalf("the WAL reached %d bytes for %d written: the background checkpoints did not keep it short", maxWAL, written)
	}
	t.Logf("%d background checkpoints; WAL at most %d bytes for %d written", s.ckpts.Load(), maxWAL, written)

	check := func(s *Store) {
		t.Helper()
		for i := range senders {
			msgs, err := s.Receive(ctx, storetest.Key(fmt.Sprint("r", i)), 0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != each {
				t.Fatalf("queue %d holds %d messages, want %d", i, len(msgs), each)
			}
			for n, m := range msgs {
				if !bytes.Equal(m.Payload, payloadOf(i, n, size)) {
					t.Fatalf("queue %d message %d is not the one enqueued", i, n)
				}
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTestStore(t, path, store.Limits{MaxQueueDepth: 1 << 20}))
}

// payloadOf is the n-th payload of sender i, size bytes.
func payloadOf(i, n, size int) []byte {
	p := bytes.Repeat([]byte{byte(i)}, size)
	copy(p, fmt.Sprint(i, "/", n, "/"))
	return p
}
