package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// statementCounter counts the statements sent on the pool's connections,
// BEGIN and COMMIT included: each is a round trip to the server.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if d.SQL != announceSQL { // the announcer's, off the caller's path
		c.n.Add(1)
	}
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// count runs fn and reports how many statements it sent.
func (c *statementCounter) count(t *testing.T, what string, fn func() error) int64 {
	t.Helper()
	before := c.n.Load()
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return c.n.Load() - before
}

// TestEnqueueOneStatement: a direct Enqueue, with a client message id or
// without, a duplicate and a refusal included, is one statement that is its
// own transaction: one round trip, no BEGIN and COMMIT of its own.
func TestEnqueueOneStatement(t *testing.T) {
	var c statementCounter
	limits := store.Limits{MaxQueueDepth: 3, MaxKeyPackages: 10, MaxStrangerMessages: 5, MaxStrangerBytes: 1 << 20}
	s, err := open(context.Background(), pgtest.NewSchema(t), limits, pgTestLogger(t), &c)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := testCtx(t)
	r, from := storetest.Key("one-statement-r"), storetest.Key("one-statement-s")
	for _, tc := range []struct {
		what string
		id   []byte
	}{{"without an id", nil}, {"with an id", []byte("m1")}, {"its duplicate", []byte("m1")}, {"another", []byte("m2")}} {
		if n := c.count(t, "Enqueue "+tc.what, func() error {
			_, _, err := s.Enqueue(ctx, r, from, tc.id, []byte("x"))
			return err
		}); n != 1 {
			t.Errorf("Enqueue %s sent %d statements, want 1", tc.what, n)
		}
	}
	before := c.n.Load()
	if _, _, err := s.Enqueue(ctx, r, from, nil, []byte("x")); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("Enqueue to a full queue: %v, want ErrLimit", err)
	}
	if n := c.n.Load() - before; n != 1 {
		t.Errorf("a refused Enqueue sent %d statements, want 1", n)
	}
}

// TestConcurrentRetriesStoredOnce: many concurrent calls of one message
// (same recipient, sender and client message id), each on a connection of
// its own, store it once: one is new, the others are its duplicates with
// its sequence number, and none fails.
func TestConcurrentRetriesStoredOnce(t *testing.T) {
	s := openTestStore(t, pgtest.NewSchema(t), store.Limits{})
	ctx := testCtx(t)
	r, from := storetest.Key("retries-r"), storetest.Key("retries-s")
	for round := range 5 {
		id := []byte(fmt.Sprint("id", round))
		const callers = 12
		var (
			wg   sync.WaitGroup
			seqs [callers]uint64
			dups [callers]bool
			errs [callers]error
		)
		start := make(chan struct{})
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				seqs[i], dups[i], errs[i] = s.Enqueue(ctx, r, from, id, []byte("payload"))
			}()
		}
		close(start)
		wg.Wait()
		fresh := 0
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("round %d: caller %d: %v", round, i, errs[i])
			}
			if seqs[i] != seqs[0] {
				t.Fatalf("round %d: sequence numbers %v, want one", round, seqs)
			}
			if !dups[i] {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d callers stored the message, want 1", round, fresh)
		}
	}
	got, err := s.Receive(ctx, r, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("queue holds %d messages, want 5", len(got))
	}
}

// count reports how often r was named.
func (n *notes) count(r []byte) int {
	c := 0
	for _, x := range n.names {
		if bytes.Equal(x, r) {
			c++
		}
	}
	return c
}

// TestEnqueueAnnouncements: direct enqueues are announced to the other
// nodes after their commits, many concurrent ones together (more than one
// notification's worth of recipients), even when the caller reuses its
// buffers once the calls return; a duplicate and a refused enqueue
// announce nothing.
func TestEnqueueAnnouncements(t *testing.T) {
	ctx := testCtx(t)
	conn := pgtest.NewDatabase(t)
	writer := openTestStore(t, conn, store.Limits{MaxQueueDepth: 1, MaxKeyPackages: 10})
	listener := openTestStore(t, conn, store.Limits{})
	n := newNotes()
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	go listener.Notifications(lctx, n.fn)
	n.waitFor(t, "the first fn(nil)", func(n *notes) bool { return n.all == 1 })

	const many = 250
	var wg sync.WaitGroup
	for i := range many {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := storetest.Key(fmt.Sprint("many", i))
			if _, _, err := writer.Enqueue(ctx, r, nil, nil, []byte("x")); err != nil {
				t.Error(err)
			}
			clear(r) // the caller's buffer is its own again once the call returns
		}()
	}
	wg.Wait()
	n.waitFor(t, "every recipient's announcement", func(n *notes) bool {
		for i := range many {
			if !n.has(storetest.Key(fmt.Sprint("many", i))) {
				return false
			}
		}
		return true
	})

	frank, marker := storetest.Key("frank"), storetest.Key("marker")
	if _, _, err := writer.Enqueue(ctx, frank, nil, []byte("id"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "frank's announcement", func(n *notes) bool { return n.has(frank) })
	if _, dup, err := writer.Enqueue(ctx, frank, nil, []byte("id"), []byte("x")); err != nil || !dup {
		t.Fatalf("the duplicate: dup %v, err %v", dup, err)
	}
	if _, _, err := writer.Enqueue(ctx, frank, nil, nil, []byte("y")); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("Enqueue to a full queue: %v, want ErrLimit", err)
	}
	// The announcer sends in order, and notifications arrive in the
	// order of their commits: once the marker's arrives, frank's second
	// would have.
	if _, _, err := writer.Enqueue(ctx, marker, nil, nil, []byte("m")); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "the marker's announcement", func(n *notes) bool { return n.has(marker) })
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.count(frank); c != 1 {
		t.Errorf("frank announced %d times, want once (a duplicate and a refusal announce nothing)", c)
	}
}

// TestAckOneStatement: an Ack, of messages or of nothing, is one statement
// that is its own transaction.
func TestAckOneStatement(t *testing.T) {
	var c statementCounter
	s, err := open(context.Background(), pgtest.NewSchema(t), storetest.Limits(), pgTestLogger(t), &c)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := testCtx(t)
	r, nobody := storetest.Key("ack-one-r"), storetest.Key("ack-one-nobody")
	for range 3 {
		if _, _, err := s.Enqueue(ctx, r, nil, nil, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		what       string
		recipient  []byte
		upTo       uint64
		want, left int
	}{{"two of three", r, 2, 2, 1}, {"what is gone", r, 2, 0, 1}, {"an unknown queue", nobody, 5, 0, 0}, {"the rest", r, 9, 1, 0}} {
		var n int
		if got := c.count(t, "Ack "+tc.what, func() (err error) {
			n, err = s.Ack(ctx, tc.recipient, tc.upTo)
			return err
		}); got != 1 {
			t.Errorf("Ack of %s sent %d statements, want 1", tc.what, got)
		}
		if n != tc.want {
			t.Errorf("Ack of %s deleted %d, want %d", tc.what, n, tc.want)
		}
		msgs, err := s.Receive(ctx, tc.recipient, 0, 10)
		if err != nil || len(msgs) != tc.left {
			t.Errorf("after the Ack of %s: %d messages left (%v), want %d", tc.what, len(msgs), err, tc.left)
		}
	}
	// The depth followed: the queue takes as many messages as before.
	var depth int64
	if err := s.pool.QueryRow(ctx, `SELECT depth FROM queues WHERE recipient = $1`, r).Scan(&depth); err != nil || depth != 0 {
		t.Fatalf("depth after acking everything: %d (%v), want 0", depth, err)
	}
}
