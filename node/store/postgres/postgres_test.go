package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func pgTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func openTestStore(t *testing.T, conn string, limits store.Limits) *Store {
	t.Helper()
	s, err := Open(context.Background(), conn, limits, pgTestLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTestStore(t, pgtest.NewSchema(t), storetest.Limits())
	})
	storetest.RunQuotas(t, func(t *testing.T) store.Store {
		return openTestStore(t, pgtest.NewSchema(t), storetest.QuotaLimits())
	})
}

func TestPersistence(t *testing.T) {
	storetest.RunPersistence(t, func(t *testing.T) func(t *testing.T) store.Store {
		conn := pgtest.NewDatabase(t)
		return func(t *testing.T) store.Store { return openTestStore(t, conn, storetest.Limits()) }
	})
}

// Two stores on one database, as two nodes would have, share every state:
// a KeyPackage is handed out once across both, a group's epoch advances
// once, and a queue's sequence numbers are shared.
func TestTwoStoresOneDatabase(t *testing.T) {
	ctx := testCtx(t)
	conn := pgtest.NewDatabase(t)
	a := openTestStore(t, conn, storetest.Limits())
	b := openTestStore(t, conn, storetest.Limits())
	id := storetest.Key("shared")
	for i := range 8 {
		if _, err := a.PutKeyPackage(ctx, id, []byte(fmt.Sprint("kp ", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		got  = map[string]int{}
		none int
		wg   sync.WaitGroup
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			pkg, err := s.TakeKeyPackage(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrNoKeyPackage):
				none++
			case err != nil:
				t.Errorf("TakeKeyPackage: %v", err)
			default:
				got[string(pkg)]++
			}
		}()
	}
	wg.Wait()
	if len(got) != 8 || none != 12 {
		t.Fatalf("takers through two stores got %d distinct packages and %d ErrNoKeyPackage, want 8 and 12 (%v)", len(got), none, got)
	}
	for pkg, n := range got {
		if n != 1 {
			t.Fatalf("package %q handed out %d times", pkg, n)
		}
	}

	g, alice, bob := storetest.GroupID("shared"), storetest.Key("alice"), storetest.Key("bob")
	roster := [][]byte{alice, bob}
	if err := a.CreateGroup(ctx, g, alice, 0, []byte("view 0"), roster); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateGroup(ctx, g, bob, 0, []byte("bob's view"), [][]byte{bob}); !errors.Is(err, store.ErrGroupExists) {
		t.Fatalf("claiming the group through the other store: %v, want ErrGroupExists", err)
	}
	// The view stored through one store is the one the other checks against.
	check := func(want, next string, to []byte) store.CommitCheck {
		return func(cur store.GroupView) (store.CommitVerdict, error) {
			if string(cur.View) != want {
				return store.CommitVerdict{}, fmt.Errorf("check saw view %q, want %q", cur.View, want)
			}
			return store.CommitVerdict{View: []byte(next), Roster: roster, Recipients: [][]byte{to}}, nil
		}
	}
	if _, err := a.SubmitCommit(ctx, g, 0, alice, []byte("c0"), []byte("commit 0"), nil, check("view 0", "view 1", bob)); err != nil {
		t.Fatal(err)
	}
	_, err := b.SubmitCommit(ctx, g, 0, bob, []byte("b0"), []byte("commit 0 by bob"), nil, check("view 0", "view 1", alice))
	var stale *store.StaleEpochError
	if !errors.As(err, &stale) || stale.Current != 1 {
		t.Fatalf("second commit for epoch 0 through the other store: err = %v, want stale at epoch 1", err)
	}
	res, err := b.SubmitCommit(ctx, g, 0, alice, []byte("c0"), []byte("commit 0"), nil, check("none", "none", bob))
	if err != nil || res != (store.CommitResult{Epoch: 0, GroupSeq: 1, Duplicate: true}) {
		t.Fatalf("resubmission through the other store = %+v, %v", res, err)
	}
	seq, _, err := b.Enqueue(ctx, bob, nil, nil, []byte("direct"))
	if err != nil || seq != 2 {
		t.Fatalf("Enqueue through b = %d, %v; want seq 2 after the commit through a", seq, err)
	}
	msgs, err := a.Receive(ctx, bob, 0, 10)
	if err != nil || len(msgs) != 2 || string(msgs[0].Payload) != "commit 0" || string(msgs[1].Payload) != "direct" {
		t.Fatalf("Receive through a = %v, %v", msgs, err)
	}
}

// A payload fanned out to several recipients is stored once and freed
// when the last recipient acknowledges or drains it.
func TestSharedPayloadFreed(t *testing.T) {
	ctx := testCtx(t)
	conn := pgtest.NewDatabase(t)
	s := openTestStore(t, conn, store.Limits{})
	g := storetest.GroupID("payloads")
	var rs [][]byte
	for i := range 5 {
		rs = append(rs, storetest.Key(fmt.Sprint("r", i)))
	}
	storetest.CreateGroup(t, s, g, append([][]byte{storetest.Key("sender")}, rs...)...)
	if _, err := s.FanOut(ctx, g, storetest.Key("sender"), nil, []byte("shared payload"), nil); err != nil {
		t.Fatal(err)
	}
	count := func() (payloads, refs int) {
		t.Helper()
		if err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(refs), 0) FROM payloads`).Scan(&payloads, &refs); err != nil {
			t.Fatal(err)
		}
		return payloads, refs
	}
	if p, r := count(); p != 1 || r != 5 {
		t.Fatalf("after the fan-out: %d payload rows with %d refs, want 1 with 5", p, r)
	}
	var wg sync.WaitGroup
	for i, r := range rs[:4] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = s.Ack(ctx, r, 1)
			} else {
				_, err = s.Drain(ctx, r)
			}
			if err != nil {
				t.Errorf("ack/drain: %v", err)
			}
		}()
	}
	wg.Wait()
	if p, r := count(); p != 1 || r != 1 {
		t.Fatalf("after four of five acknowledged: %d payload rows with %d refs, want 1 with 1", p, r)
	}
	msgs, err := s.Receive(ctx, rs[4], 0, 10)
	if err != nil || len(msgs) != 1 || string(msgs[0].Payload) != "shared payload" {
		t.Fatalf("the last recipient's message: %v, %v", msgs, err)
	}
	if n, err := s.Ack(ctx, rs[4], 1); err != nil || n != 1 {
		t.Fatalf("Ack = %d, %v", n, err)
	}
	if p, _ := count(); p != 0 {
		t.Fatalf("after every recipient acknowledged: %d payload rows, want 0", p)
	}
}

// The schema version is recorded; a database from a newer program is
// refused, and reopening applies nothing twice.
func TestMigrations(t *testing.T) {
	ctx := testCtx(t)
	conn := pgtest.NewDatabase(t)
	s := openTestStore(t, conn, store.Limits{})
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema_version = %d, %v; want %d", v, err, len(migrations))
	}
	s.Close()
	openTestStore(t, conn, store.Limits{}).Close() // already current

	// Nodes starting together migrate once between them.
	fresh := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := Open(ctx, fresh, store.Limits{}, nil)
			if err == nil {
				st.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open of a fresh database: %v", err)
		}
	}

	admin, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `UPDATE schema_version SET version = $1`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, conn, store.Limits{}, nil)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenInvalid(t *testing.T) {
	ctx := testCtx(t)
	for _, conn := range []string{"", "host='unterminated", "postgres://u:secret@[::1"} {
		_, err := Open(ctx, conn, store.Limits{}, nil)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Open(%q): err = %v, want ErrInvalid", conn, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): the error shows the password: %v", conn, err)
		}
	}
	_, err := Open(ctx, pgtest.NewDatabase(t), store.Limits{MaxQueueDepth: -1}, nil)
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Open with a negative limit: err = %v, want ErrInvalid", err)
	}
}

// notes collects what a Notifications callback is given.
type notes struct {
	mu    sync.Mutex
	all   int      // fn(nil) calls
	names [][]byte // recipients
	ch    chan struct{}
}

func newNotes() *notes { return &notes{ch: make(chan struct{}, 1)} }

func (n *notes) fn(r []byte) {
	n.mu.Lock()
	if r == nil {
		n.all++
	} else {
		n.names = append(n.names, bytes.Clone(r))
	}
	n.mu.Unlock()
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds of n, failing the test after 10s.
func (n *notes) waitFor(t *testing.T, what string, cond func(n *notes) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		n.mu.Lock()
		ok := cond(n)
		n.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-n.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (n *notes) has(r []byte) bool {
	for _, x := range n.names {
		if bytes.Equal(x, r) {
			return true
		}
	}
	return false
}

// Every write that stores a message notifies its recipients to the
// listeners of every store on the database, only once committed; a lost
// listening connection is opened again and announced with fn(nil).
func TestNotifications(t *testing.T) {
	ctx := testCtx(t)
	conn := pgtest.NewDatabase(t)
	writer := openTestStore(t, conn, storetest.Limits())
	listener := openTestStore(t, conn, storetest.Limits())

	n := newNotes()
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- listener.Notifications(lctx, n.fn) }()
	n.waitFor(t, "the first fn(nil)", func(n *notes) bool { return n.all == 1 })

	alice, bob, carol, dave := storetest.Key("alice"), storetest.Key("bob"), storetest.Key("carol"), storetest.Key("dave")
	if _, _, err := writer.Enqueue(ctx, alice, nil, []byte("x"), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "alice's notification", func(n *notes) bool { return n.has(alice) })

	g := storetest.GroupID("notify")
	storetest.CreateGroup(t, writer, g, alice, bob)
	if _, err := writer.SubmitCommit(ctx, g, 0, alice, nil, []byte("c"), []byte("w"),
		storetest.Deliver([][]byte{alice, bob, dave}, [][]byte{bob}, [][]byte{carol})); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "the commit's and the welcome's notifications", func(n *notes) bool { return n.has(bob) && n.has(carol) })
	if _, err := writer.FanOut(ctx, g, bob, nil, []byte("m"), nil); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "the fan-out's notification", func(n *notes) bool { return n.has(dave) })

	// A refused write notifies nobody: notifications of one session arrive
	// in commit order, so once the marker's arrives, eve's would have too.
	eve, marker := storetest.Key("eve"), storetest.Key("marker")
	_, err := writer.SubmitCommit(ctx, g, 0, alice, nil, []byte("stale"), nil, storetest.Deliver([][]byte{alice, eve}, [][]byte{eve}, nil))
	if !errors.Is(err, store.ErrStaleEpoch) {
		t.Fatalf("stale commit: err = %v", err)
	}
	if _, _, err := writer.Enqueue(ctx, marker, nil, nil, []byte("m")); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "the marker's notification", func(n *notes) bool { return n.has(marker) })
	n.mu.Lock()
	if n.has(eve) {
		t.Errorf("a refused commit notified its recipient")
	}
	n.mu.Unlock()

	// The listening connection dies: Notifications connects again and
	// says that anything may have changed.
	admin, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `
SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE application_name = $1 AND datname = current_database()) AS t`, listenAppName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate the listening connection: %d terminated, %v", killed, err)
	}
	n.waitFor(t, "fn(nil) after reconnecting", func(n *notes) bool { return n.all == 2 })
	frank := storetest.Key("frank")
	if _, _, err := writer.Enqueue(ctx, frank, nil, nil, []byte("after")); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "a notification after reconnecting", func(n *notes) bool { return n.has(frank) })

	lcancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Notifications after its context ended: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Notifications did not return after its context ended")
	}

	// Closing the store ends Notifications with ErrClosed, and later calls
	// fail at once.
	n2 := newNotes()
	go func() { done <- listener.Notifications(ctx, n2.fn) }()
	n2.waitFor(t, "fn(nil)", func(n *notes) bool { return n.all == 1 })
	if err := listener.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Notifications when the store closed: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Notifications did not return when the store closed")
	}
	if err := listener.Notifications(ctx, n2.fn); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Notifications on a closed store: %v, want ErrClosed", err)
	}
}

// The pool holds DefaultMaxConns connections unless the connection string
// says otherwise.
func TestPoolSize(t *testing.T) {
	conn := pgtest.NewDatabase(t)
	if s := openTestStore(t, conn, store.Limits{}); s.pool.Config().MaxConns != DefaultMaxConns {
		t.Fatalf("pool of %d connections, want %d", s.pool.Config().MaxConns, DefaultMaxConns)
	}
	if s := openTestStore(t, conn+" pool_max_conns=3", store.Limits{}); s.pool.Config().MaxConns != 3 {
		t.Fatalf("pool_max_conns=3 gave a pool of %d", s.pool.Config().MaxConns)
	}
}
