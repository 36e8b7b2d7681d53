package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

func TestPing(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	anon := n.dial(t, nil)
	res, err := anon.Ping(ctx)
	if err != nil {
		t.Fatalf("anonymous ping: %v", err)
	}
	if res.Identity != nil || time.Since(res.ServerTime).Abs() > time.Minute {
		t.Fatalf("anonymous ping: %+v", res)
	}
	a := newTestIdentity(t)
	res, err = n.dial(t, a.priv).Ping(ctx)
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if !bytes.Equal(res.Identity, a.pub) {
		t.Fatalf("node bound the connection to %x, want %x", res.Identity, a.pub)
	}
}

func TestKeyPackageUploadFetch(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)

	uploaded := map[string]bool{}
	for i := range 3 {
		kp := testKeyPackage(a.pub, byte(i))
		fp, err := ca.UploadKeyPackage(ctx, a.pub, kp, false)
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		if fp != sha256.Sum256(kp) {
			t.Fatalf("fingerprint %x, want SHA-256 of the package", fp)
		}
		uploaded[string(kp)] = true
	}
	last := testKeyPackage(a.pub, 0xee)
	if _, err := ca.UploadKeyPackage(ctx, a.pub, last, true); err != nil {
		t.Fatalf("upload last resort: %v", err)
	}
	cnt, err := ca.KeyPackageCount(ctx, a.pub)
	if err != nil || cnt != (client.KeyPackageCount{Remaining: 3, LastResort: true}) {
		t.Fatalf("count = %+v, %v; want 3 + last resort", cnt, err)
	}

	for i := range 3 {
		kp, err := cb.FetchKeyPackage(ctx, a.pub)
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		if !uploaded[string(kp)] {
			t.Fatalf("fetch %d returned a package that is not one left: %x", i, kp)
		}
		delete(uploaded, string(kp))
	}
	// Only the last-resort package is left: returned every time, not consumed.
	for range 2 {
		kp, err := cb.FetchKeyPackage(ctx, a.pub)
		if err != nil || !bytes.Equal(kp, last) {
			t.Fatalf("fetch after the others are gone: %x, %v; want the last-resort package", kp, err)
		}
	}
	cnt, err = ca.KeyPackageCount(ctx, a.pub)
	if err != nil || cnt != (client.KeyPackageCount{Remaining: 0, LastResort: true}) {
		t.Fatalf("count = %+v, %v; want 0 + last resort", cnt, err)
	}

	// b has none at all.
	_, err = ca.FetchKeyPackage(ctx, b.pub)
	wantErr(t, "fetch from empty directory", err, client.ErrNoKeyPackage)
}

func TestKeyPackageConcurrentFetchers(t *testing.T) {
	for _, lastResort := range []bool{false, true} {
		t.Run(fmt.Sprintf("lastResort=%v", lastResort), func(t *testing.T) {
			testConcurrentFetchers(t, lastResort)
		})
	}
}

// testConcurrentFetchers: 50 clients fetch one identity's 30 packages at
// once. Each package goes to exactly one of them; the other 20 get "none
// left", or the last-resort package when there is one.
func testConcurrentFetchers(t *testing.T, withLastResort bool) {
	n := startTestNode(t, server.Config{TargetFetchBurst: 1000}, store.Limits{})
	ctx := testCtx(t)
	a := newTestIdentity(t)
	ca := n.dial(t, a.priv)
	const packages, fetchers = 30, 50
	for i := range packages {
		if _, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, byte(i)), false); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	last := testKeyPackage(a.pub, 0xee)
	if withLastResort {
		if _, err := ca.UploadKeyPackage(ctx, a.pub, last, true); err != nil {
			t.Fatalf("upload last resort: %v", err)
		}
	}
	clients := make([]*client.Client, fetchers)
	for i := range clients {
		clients[i] = n.dial(t, newTestIdentity(t).priv)
	}
	var (
		mu         sync.Mutex
		got        = map[string]int{}
		none, lrs  int
		wg         sync.WaitGroup
		unexpected []error
	)
	start := make(chan struct{})
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			kp, err := c.FetchKeyPackage(ctx, a.pub)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && bytes.Equal(kp, last):
				lrs++
			case err == nil:
				got[string(kp)]++
			case errors.Is(err, client.ErrNoKeyPackage):
				none++
			default:
				unexpected = append(unexpected, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("unexpected errors: %v", unexpected)
	}
	wantNone, wantLR := fetchers-packages, 0
	if withLastResort {
		wantNone, wantLR = 0, fetchers-packages
	}
	if len(got) != packages || none != wantNone || lrs != wantLR {
		t.Fatalf("%d distinct packages, %d 'none left', %d last-resort; want %d, %d, %d",
			len(got), none, lrs, packages, wantNone, wantLR)
	}
	for kp, k := range got {
		if k != 1 {
			t.Fatalf("package %x handed out %d times", sha256.Sum256([]byte(kp)), k)
		}
	}
}

func TestEnqueueFetchFIFO(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	for i := range 20 {
		seq, dup, err := ca.Enqueue(ctx, b.pub, fmt.Appendf(nil, "m%02d", i), nil)
		if err != nil || dup || seq != uint64(i+1) {
			t.Fatalf("enqueue %d: seq %d dup %v err %v", i, seq, dup, err)
		}
	}
	got, err := cb.Fetch(ctx, b.pub)
	if err != nil || len(got) != 20 {
		t.Fatalf("fetch: %d payloads, %v", len(got), err)
	}
	for i, p := range got {
		if string(p) != fmt.Sprintf("m%02d", i) {
			t.Fatalf("payload %d = %q: not FIFO", i, p)
		}
	}
	got, err = cb.Fetch(ctx, b.pub)
	if err != nil || len(got) != 0 {
		t.Fatalf("second fetch after drain: %d payloads, %v", len(got), err)
	}
	// Sequence numbers are never reused after a drain.
	seq, _, err := ca.Enqueue(ctx, b.pub, []byte("after"), nil)
	if err != nil || seq != 21 {
		t.Fatalf("enqueue after drain: seq %d, %v; want 21", seq, err)
	}
}

func TestReceiveAckIdempotentEnqueue(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	for i := range 5 {
		id := fmt.Appendf(nil, "id-%d", i)
		seq, dup, err := ca.Enqueue(ctx, b.pub, fmt.Appendf(nil, "p%d", i), id)
		if err != nil || dup || seq != uint64(i+1) {
			t.Fatalf("enqueue %d: %d %v %v", i, seq, dup, err)
		}
	}
	// A resend with the same client message id is not stored twice.
	seq, dup, err := ca.Enqueue(ctx, b.pub, []byte("p2 again"), []byte("id-2"))
	if err != nil || !dup || seq != 3 {
		t.Fatalf("repeat enqueue: seq %d dup %v err %v; want 3, duplicate", seq, dup, err)
	}
	// The same id from another sender is a different message.
	c3 := n.dial(t, newTestIdentity(t).priv)
	seq, dup, err = c3.Enqueue(ctx, b.pub, []byte("other sender"), []byte("id-2"))
	if err != nil || dup || seq != 6 {
		t.Fatalf("same id, other sender: seq %d dup %v err %v; want 6, new", seq, dup, err)
	}

	msgs, err := cb.Receive(ctx, b.pub, 0, 2)
	if err != nil || len(msgs) != 2 || msgs[0].Seq != 1 || msgs[1].Seq != 2 {
		t.Fatalf("receive limit 2: %+v %v", msgs, err)
	}
	if !bytes.Equal(msgs[0].Sender, a.pub) || string(msgs[0].ClientMsgID) != "id-0" || string(msgs[0].Payload) != "p0" {
		t.Fatalf("envelope 1 = %+v", msgs[0])
	}
	if time.Since(msgs[0].EnqueuedAt).Abs() > time.Minute {
		t.Fatalf("enqueued at %v", msgs[0].EnqueuedAt)
	}
	// Receive does not delete: the same cursor gives the same messages.
	again, err := cb.Receive(ctx, b.pub, 0, 0)
	if err != nil || len(again) != 6 {
		t.Fatalf("receive all: %d, %v", len(again), err)
	}
	deleted, err := cb.Ack(ctx, b.pub, 4)
	if err != nil || deleted != 4 {
		t.Fatalf("ack 4: deleted %d, %v", deleted, err)
	}
	rest, err := cb.Receive(ctx, b.pub, 0, 0)
	if err != nil || len(rest) != 2 || rest[0].Seq != 5 || rest[1].Seq != 6 {
		t.Fatalf("after ack: %+v %v", rest, err)
	}
	rest, err = cb.Receive(ctx, b.pub, 5, 0)
	if err != nil || len(rest) != 1 || rest[0].Seq != 6 || string(rest[0].Payload) != "other sender" {
		t.Fatalf("after cursor 5: %+v %v", rest, err)
	}
	deleted, err = cb.Ack(ctx, b.pub, 4)
	if err != nil || deleted != 0 {
		t.Fatalf("repeated ack: deleted %d, %v", deleted, err)
	}
}

func TestSubscribePush(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)

	// Two stored before subscribing, one of them behind the cursor.
	for _, p := range []string{"old", "stored"} {
		if _, _, err := ca.Enqueue(ctx, b.pub, []byte(p), nil); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan client.Envelope, 100)
	inDeliver := make(chan struct{}, 100)
	sub, err := cb.Subscribe(ctx, b.pub, 1, func(ctx context.Context, batch []client.Envelope) error {
		inDeliver <- struct{}{}
		for _, e := range batch {
			got <- e
		}
		return nil
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	next := func() client.Envelope {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("no push within 10s")
			return client.Envelope{}
		}
	}
	if e := next(); e.Seq != 2 || string(e.Payload) != "stored" {
		t.Fatalf("first push %+v, want the stored message after the cursor", e)
	}
	for i := range 5 {
		p := fmt.Sprintf("live %d", i)
		if _, _, err := ca.Enqueue(ctx, b.pub, []byte(p), nil); err != nil {
			t.Fatal(err)
		}
		if e := next(); e.Seq != uint64(3+i) || string(e.Payload) != p || !bytes.Equal(e.Sender, a.pub) {
			t.Fatalf("push %d = %+v", i, e)
		}
	}
	// Pushed messages stay until acked.
	if msgs, err := cb.Receive(ctx, b.pub, 0, 0); err != nil || len(msgs) != 7 {
		t.Fatalf("receive after push: %d, %v", len(msgs), err)
	}

	if err := sub.Cancel(ctx); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if _, _, err := ca.Enqueue(ctx, b.pub, []byte("after cancel"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		t.Fatalf("push after cancel: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestSubscribeFlowControl(t *testing.T) {
	n := startTestNode(t, server.Config{ReceiveBatch: 1}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	var (
		mu       sync.Mutex
		inFlight int
		maxIn    int
		seqs     []uint64
	)
	done := make(chan struct{})
	_, err := cb.Subscribe(ctx, b.pub, 0, func(ctx context.Context, batch []client.Envelope) error {
		mu.Lock()
		inFlight++
		maxIn = max(maxIn, inFlight)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		inFlight--
		for _, e := range batch {
			seqs = append(seqs, e.Seq)
		}
		if len(seqs) == 20 {
			close(done)
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, _, err := ca.Enqueue(ctx, b.pub, fmt.Appendf(nil, "%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("pushes did not arrive")
	}
	mu.Lock()
	defer mu.Unlock()
	if maxIn != 1 {
		t.Fatalf("%d deliver calls at once, want 1", maxIn)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("pushed seqs %v not in order", seqs)
		}
	}
}

func TestSubscriptionLimit(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	b := newTestIdentity(t)
	cb := n.dial(t, b.priv)
	nop := func(context.Context, []client.Envelope) error { return nil }
	var subs []*client.Subscription
	for i := range 16 {
		s, err := cb.Subscribe(ctx, b.pub, 0, nop)
		if err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
		subs = append(subs, s)
	}
	_, err := cb.Subscribe(ctx, b.pub, 0, nop)
	wantErr(t, "17th subscription", err, client.ErrLimit)
	// Cancelling one makes room again.
	if err := subs[0].Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cb.Subscribe(ctx, b.pub, 0, nop)
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrLimit) || time.Now().After(deadline) {
			t.Fatalf("subscribe after cancel: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSubscribeAckFromDeliver: a subscriber may call the node (here: Ack)
// from inside its deliver function, the way a receiver acknowledges what it
// has committed before returning.
func TestSubscribeAckFromDeliver(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	acked := make(chan uint64, 100)
	_, err := cb.Subscribe(ctx, b.pub, 0, func(ctx context.Context, batch []client.Envelope) error {
		last := batch[len(batch)-1].Seq
		if _, err := cb.Ack(ctx, b.pub, last); err != nil {
			return err
		}
		acked <- last
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, _, err := ca.Enqueue(ctx, b.pub, fmt.Appendf(nil, "%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(10 * time.Second)
	for last := uint64(0); last < 10; {
		select {
		case last = <-acked:
		case <-deadline:
			t.Fatalf("acked up to %d of 10", last)
		}
	}
	if msgs, err := cb.Receive(ctx, b.pub, 0, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("queue after acks from deliver: %d messages, %v", len(msgs), err)
	}
}

func TestSubscriptionEnds(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	waitDone := func(s *client.Subscription) {
		t.Helper()
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("subscription not done")
		}
	}

	t.Run("deliver error", func(t *testing.T) {
		refuse := errors.New("cannot store that now")
		var calls atomic.Int32
		sub, err := cb.Subscribe(ctx, b.pub, 0, func(context.Context, []client.Envelope) error {
			calls.Add(1)
			return refuse
		})
		if err != nil {
			t.Fatal(err)
		}
		if sub.Err() != nil {
			t.Fatalf("Err before the end: %v", sub.Err())
		}
		if _, _, err := ca.Enqueue(ctx, b.pub, []byte("1"), nil); err != nil {
			t.Fatal(err)
		}
		waitDone(sub)
		if !errors.Is(sub.Err(), refuse) {
			t.Fatalf("Err = %v, want the deliver error", sub.Err())
		}
		if _, _, err := ca.Enqueue(ctx, b.pub, []byte("2"), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if k := calls.Load(); k != 1 {
			t.Fatalf("deliver called %d times, want 1", k)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		// After the queue's last message: nothing to push.
		sub, err := cb.Subscribe(ctx, b.pub, 2, func(context.Context, []client.Envelope) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		waitDone(sub)
		if !errors.Is(sub.Err(), client.ErrSubscriptionEnded) {
			t.Fatalf("Err = %v", sub.Err())
		}
	})

	t.Run("connection closed", func(t *testing.T) {
		c := n.dial(t, b.priv)
		sub, err := c.Subscribe(ctx, b.pub, 2, func(context.Context, []client.Envelope) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		waitDone(sub)
		if !errors.Is(sub.Err(), client.ErrSubscriptionEnded) {
			t.Fatalf("Err = %v", sub.Err())
		}
	})
}

// ackGateStore holds every Ack until gate is closed, and says when one is
// waiting.
type ackGateStore struct {
	store.Store
	entered chan struct{}
	gate    chan struct{}
}

func (s *ackGateStore) Ack(ctx context.Context, recipient []byte, upTo uint64) (int, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.gate
	return s.Store.Ack(ctx, recipient, upTo)
}

// TestCloseWhileDeliverCalls: a client closed while its DeliverFunc waits
// for the answer to a call of its own (an Ack whose reply arrives only
// after the close began) still closes, and the call returns an error
// instead of waiting for good.
func TestCloseWhileDeliverCalls(t *testing.T) {
	for _, own := range []bool{false, true} {
		// The deliver function calls with the context it was given, or
		// with one of its own that the close does not end.
		t.Run(fmt.Sprintf("ownContext=%v", own), func(t *testing.T) { testCloseWhileDeliverCalls(t, own) })
	}
}

func testCloseWhileDeliverCalls(t *testing.T, ownCtx bool) {
	gs := &ackGateStore{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	n := startWrappedNode(t, server.Config{}, store.Limits{}, func(st store.Store) store.Store {
		gs.Store = st
		return gs
	})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	ackErr := make(chan error, 1)
	if _, err := cb.Subscribe(ctx, b.pub, 0, func(ctx context.Context, batch []client.Envelope) error {
		if ownCtx {
			ctx = context.Background()
		}
		_, err := cb.Ack(ctx, b.pub, batch[len(batch)-1].Seq)
		ackErr <- err
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Enqueue(ctx, b.pub, []byte("m"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gs.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the ack never reached the node")
	}
	closed := make(chan error, 1)
	go func() { closed <- cb.Close() }()
	time.Sleep(200 * time.Millisecond) // the close is under way
	close(gs.gate)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while the deliver function waited for its ack")
	}
	select {
	case err := <-ackErr:
		if err == nil {
			// The reply can beat the close on a slow machine; then there
			// was nothing to wait for.
			t.Log("the ack was answered before the close")
		} else if ownCtx && !errors.Is(err, client.ErrClosed) {
			t.Fatalf("ack during close: %v, want ErrClosed", err)
		} else if !errors.Is(err, context.Canceled) && !errors.Is(err, client.ErrClosed) {
			t.Fatalf("ack during close: %v, want context.Canceled or ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the deliver function's ack never returned")
	}
}

// A node serves at most MaxConnsPerIP connections from one address: the
// next is refused with ErrLimit while the others keep working, and closing
// one makes room.
func TestMaxConnsPerIP(t *testing.T) {
	n := startTestNode(t, server.Config{MaxConnsPerIP: 2}, store.Limits{})
	ctx := testCtx(t)
	a, b, c := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := client.Dial(dctx, n.addr, client.Config{Identity: c.priv, PinnedCert: n.certDER, Logger: testLogger(t)})
	wantErr(t, "third connection from one address", err, client.ErrLimit)
	t.Logf("refused: %v", err)
	for _, cl := range []*client.Client{ca, cb} {
		if _, err := cl.Ping(ctx); err != nil {
			t.Fatalf("admitted connection after the refusal: %v", err)
		}
	}
	ca.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cc, err := client.Dial(dctx, n.addr, client.Config{Identity: c.priv, PinnedCert: n.certDER, Logger: testLogger(t)})
		if err == nil {
			if _, err := cc.Ping(ctx); err != nil {
				t.Fatalf("ping on the connection admitted after a close: %v", err)
			}
			cc.Close()
			break
		}
		if !errors.Is(err, client.ErrLimit) || time.Now().After(deadline) {
			t.Fatalf("dial after closing one: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
