package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

func sqliteTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func openTestStore(t *testing.T, path string, limits store.Limits) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, limits, sqliteTestLogger(t))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTestStore(t, filepath.Join(t.TempDir(), "node.db"), storetest.Limits())
	})
	storetest.RunQuotas(t, func(t *testing.T) store.Store {
		return openTestStore(t, filepath.Join(t.TempDir(), "node.db"), storetest.QuotaLimits())
	})
}

func TestPersistence(t *testing.T) {
	storetest.RunPersistence(t, func(t *testing.T) func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "node.db")
		return func(t *testing.T) store.Store { return openTestStore(t, path, storetest.Limits()) }
	})
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "node.db")
	s := openTestStore(t, path, store.Limits{})
	if _, _, err := s.Enqueue(context.Background(), storetest.Key("r"), nil, nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		dir:               0o700 | os.ModeDir,
		path:              0o600,
		path + "-wal":     0o600,
		path + "-shm":     0o600,
		filepath.Dir(dir): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// An existing file that others can read is restricted.
	loose := filepath.Join(t.TempDir(), "loose.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	openTestStore(t, loose, store.Limits{})
	fi, err := os.Stat(loose)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("existing loose file has mode %v after Open, want 0600", fi.Mode().Perm())
	}
}

func TestPragmas(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), store.Limits{})
	ctx := context.Background()
	for _, db := range []*sql.DB{s.w, s.r} {
		var mode string
		var sync, fk, busy int
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 2 || fk != 1 || busy != int(busyTimeout.Milliseconds()) {
			t.Errorf("journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d, want wal 2 (FULL) 1 %d",
				mode, sync, fk, busy, busyTimeout.Milliseconds())
		}
	}
	// Readers cannot write.
	if _, err := s.r.ExecContext(ctx, "DELETE FROM messages"); err == nil {
		t.Error("a reader connection accepted a write")
	}
}

// The writer's page cache is SQLite's default unless the options say more;
// a negative size is refused.
func TestWriterCache(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ opt, wantKiB int }{{0, DefaultWriterCacheMiB << 10}, {16, 16 << 10}} {
		s, err := OpenOptions(ctx, filepath.Join(t.TempDir(), "node.db"), store.Limits{}, Options{WriterCacheMiB: c.opt}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var size int
		if err := s.w.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&size); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if size != -c.wantKiB {
			t.Errorf("WriterCacheMiB %d: cache_size %d, want %d", c.opt, size, -c.wantKiB)
		}
	}
	if _, err := OpenOptions(ctx, filepath.Join(t.TempDir(), "node.db"), store.Limits{}, Options{WriterCacheMiB: -1}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a negative cache: %v, want ErrInvalid", err)
	}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	s := openTestStore(t, path, store.Limits{})
	var v int
	if err := s.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != len(migrations) {
		t.Fatalf("user_version = %d, want %d", v, len(migrations))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening applies nothing twice.
	s = openTestStore(t, path, store.Limits{})
	if err := s.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != len(migrations) {
		t.Fatalf("user_version after reopen = %d, want %d", v, len(migrations))
	}
	// A database from the future is refused, and left as it was.
	if _, err := s.w.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, store.Limits{}, nil)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer database: %v, want ErrSchemaTooNew", err)
	}
	t.Logf("error reads: %v", err)
}

func TestMigrationFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(append([]string(nil), saved...), `CREATE TABLE extra (x INTEGER); THIS IS NOT SQL;`)
	if _, err := Open(context.Background(), path, store.Limits{}, nil); err == nil {
		t.Fatal("Open with a broken migration succeeded")
	}
	migrations = saved
	s := openTestStore(t, path, store.Limits{})
	var n int
	if err := s.w.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'extra'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a failed migration left part of its changes behind")
	}
}

func TestOpenInvalid(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		path   string
		limits store.Limits
	}{
		"empty path":         {"", store.Limits{}},
		"negative kp limit":  {filepath.Join(t.TempDir(), "a.db"), store.Limits{MaxKeyPackages: -1}},
		"negative depth":     {filepath.Join(t.TempDir(), "b.db"), store.Limits{MaxQueueDepth: -5}},
		"folder, not a file": {t.TempDir(), store.Limits{}},
	} {
		if s, err := Open(ctx, tc.path, tc.limits, nil); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if name != "folder, not a file" && !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// A file that is not a database.
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte("this is not an SQLite database, not at all, no"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, junk, store.Limits{}, nil); err == nil {
		s.Close()
		t.Error("Open of a junk file succeeded")
	}
}

func TestDefaultLimits(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), store.Limits{})
	if s.limits.MaxKeyPackages != DefaultMaxKeyPackages || s.limits.MaxQueueDepth != DefaultMaxQueueDepth {
		t.Fatalf("limits = %+v, want defaults", s.limits)
	}
	ctx := context.Background()
	id := storetest.Key("defaults")
	for i := range DefaultMaxKeyPackages {
		if _, err := s.PutKeyPackage(ctx, id, []byte(fmt.Sprint("kp ", i)), false); err != nil {
			t.Fatalf("PutKeyPackage %d: %v", i, err)
		}
	}
	if _, err := s.PutKeyPackage(ctx, id, []byte("one more"), false); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("PutKeyPackage beyond the default limit: %v, want ErrLimit", err)
	}
}

func TestDedupPrune(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), storetest.Limits())
	ctx := context.Background()
	now := time.Now()
	s.now = func() time.Time { return now }
	r, sender := storetest.Key("r"), storetest.Key("s")
	seq1, _, err := s.Enqueue(ctx, r, sender, []byte("old"), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(ctx, r, seq1); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DedupRetention - time.Minute)
	if _, _, err := s.Enqueue(ctx, r, sender, []byte("young"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	// Not yet expired.
	if n, err := s.prune(ctx); err != nil || n != 0 {
		t.Fatalf("prune = %d, %v; want 0", n, err)
	}
	now = now.Add(2 * time.Minute)
	if n, err := s.prune(ctx); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want 1", n, err)
	}
	// The expired id is forgotten: a repeat is stored again, with a new number.
	seq, dup, err := s.Enqueue(ctx, r, sender, []byte("old"), []byte("1"))
	if err != nil || dup || seq != 3 {
		t.Fatalf("Enqueue of an expired id = (%d, %v, %v), want (3, false, nil)", seq, dup, err)
	}
	// The young one is still remembered.
	seq, dup, err = s.Enqueue(ctx, r, sender, []byte("young"), []byte("2"))
	if err != nil || !dup || seq != 2 {
		t.Fatalf("Enqueue of a remembered id = (%d, %v, %v), want (2, true, nil)", seq, dup, err)
	}

	// Group submissions expire the same way.
	g := storetest.GroupID("g")
	storetest.CreateGroup(t, s, g, sender, r)
	deliver := storetest.Deliver([][]byte{sender, r}, [][]byte{r}, nil)
	if _, err := s.SubmitCommit(ctx, g, 0, sender, []byte("c0"), []byte("commit"), nil, deliver); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FanOut(ctx, g, sender, []byte("m"), []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DedupRetention + time.Second)
	if n, err := s.prune(ctx); err != nil || n != 4 {
		t.Fatalf("prune = %d, %v; want 4 (two queue entries, two group entries)", n, err)
	}
	if _, err := s.SubmitCommit(ctx, g, 0, sender, []byte("c0"), []byte("commit"), nil, deliver); !errors.Is(err, store.ErrStaleEpoch) {
		t.Fatalf("resubmitted commit after its entry expired: %v, want ErrStaleEpoch", err)
	}
	fr, err := s.FanOut(ctx, g, sender, []byte("m"), []byte("hello"), nil)
	seq, dup = fr.GroupSeq, fr.Duplicate
	if err != nil || dup || seq != 3 {
		t.Fatalf("FanOut of an expired id = (%d, %v, %v), want (3, false, nil)", seq, dup, err)
	}
}

func TestCanceledContext(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), storetest.Limits())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := storetest.Key("r")
	if _, _, err := s.Enqueue(ctx, r, nil, nil, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue with a canceled context: %v", err)
	}
	if _, err := s.Receive(ctx, r, 0, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a canceled context: %v", err)
	}
	// Nothing was stored, and the store still works.
	seq, _, err := s.Enqueue(context.Background(), r, nil, nil, []byte("x"))
	if err != nil || seq != 1 {
		t.Fatalf("Enqueue = %d, %v; want 1", seq, err)
	}
}

// Two handles on one file (as two node processes would have) still hand out
// every KeyPackage once: writers take the database lock with BEGIN IMMEDIATE.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	a := openTestStore(t, path, store.Limits{})
	b := openTestStore(t, path, store.Limits{})
	ctx := context.Background()
	id := storetest.Key("shared")
	const n = 40
	for i := range n {
		if _, err := a.PutKeyPackage(ctx, id, []byte(fmt.Sprint("kp ", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		none int
		wg   sync.WaitGroup
	)
	for i := range 2 * n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkg, err := s.TakeKeyPackage(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrNoKeyPackage):
				none++
			case err != nil:
				t.Error(err)
			default:
				seen[string(pkg)]++
			}
		}()
	}
	wg.Wait()
	for pkg, k := range seen {
		if k != 1 {
			t.Errorf("%q handed out %d times", pkg, k)
		}
	}
	if len(seen) != n || none != n {
		t.Fatalf("%d distinct packages and %d ErrNoKeyPackage, want %d and %d", len(seen), none, n, n)
	}
	// Sequence numbers too stay unique across handles.
	r := storetest.Key("shared queue")
	seqs := make(chan uint64, 2*n)
	for i := range 2 * n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, _, err := s.Enqueue(ctx, r, nil, nil, []byte("x"))
			if err != nil {
				t.Error(err)
			}
			seqs <- seq
		}()
	}
	wg.Wait()
	close(seqs)
	got := map[uint64]bool{}
	for seq := range seqs {
		if got[seq] || seq < 1 || seq > 2*n {
			t.Fatalf("seq %d repeated or out of range", seq)
		}
		got[seq] = true
	}
}

// A fanned-out body is stored once and freed with the last entry that
// refers to it, whether acknowledged or drained.
func TestSharedPayloadFreed(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "node.db"), storetest.Limits())
	ctx := context.Background()
	g, sender := storetest.GroupID("g"), storetest.Key("sender")
	a, b, c := storetest.Key("a"), storetest.Key("b"), storetest.Key("c")
	body := []byte("one copy for all")
	storetest.CreateGroup(t, s, g, sender, a, b, c)
	if _, err := s.FanOut(ctx, g, sender, []byte("m1"), body, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubmitCommit(ctx, g, 0, sender, []byte("c0"), []byte("commit"), []byte("welcome"),
		storetest.Deliver([][]byte{sender, a, b, c}, [][]byte{a, b}, [][]byte{c})); err != nil {
		t.Fatal(err)
	}
	bodies := func() (n int, refs int) {
		t.Helper()
		if err := s.w.QueryRow(`SELECT count(*), coalesce(sum(refs), 0) FROM bodies`).Scan(&n, &refs); err != nil {
			t.Fatal(err)
		}
		return n, refs
	}
	// The application message (3 recipients), the commit (2) and the welcome (1).
	if n, refs := bodies(); n != 3 || refs != 6 {
		t.Fatalf("bodies: %d rows with %d refs, want 3 with 6", n, refs)
	}
	var stored int
	if err := s.w.QueryRow(`SELECT coalesce(sum(length(payload)), 0) FROM bodies`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := len(body) + len("commit") + len("welcome"); stored != want {
		t.Fatalf("bodies hold %d payload bytes, want each payload once (%d)", stored, want)
	}
	if _, err := s.Ack(ctx, a, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Drain(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, refs := bodies(); n != 2 || refs != 2 {
		t.Fatalf("bodies after two recipients are done: %d rows with %d refs, want 2 with 2", n, refs)
	}
	got, err := s.Receive(ctx, c, 0, 10)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0].Payload, body) || !bytes.Equal(got[1].Payload, []byte("welcome")) {
		t.Fatalf("third recipient's queue = %d messages, %v", len(got), err)
	}
	if _, err := s.Ack(ctx, c, got[0].Seq); err != nil {
		t.Fatal(err)
	}
	if n, refs := bodies(); n != 1 || refs != 1 {
		t.Fatalf("bodies after the shared one is done: %d rows with %d refs, want 1 with 1", n, refs)
	}
	if _, err := s.Ack(ctx, c, got[1].Seq); err != nil {
		t.Fatal(err)
	}
	if n, refs := bodies(); n != 0 || refs != 0 {
		t.Fatalf("bodies after everyone is done: %d rows with %d refs, want none", n, refs)
	}
}

// A database created by the first schema version, with data in it, is
// brought to the current version and keeps its data.
func TestMigrationUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	ctx := context.Background()
	r, id := storetest.Key("r"), storetest.Key("id")
	// Write a version-1 database the way the first release did.
	old, err := openDB(path, false, DefaultWriterCacheMiB)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"PRAGMA journal_mode=WAL",
		migrations[0],
		"PRAGMA user_version = 1",
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO queues (recipient, last_seq, depth) VALUES (?, 1, 1)`, []any{r}},
		{`INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, enqueued_at) VALUES (?, 1, x'', ?, ?, 1)`, []any{r, []byte("m1"), []byte("before the upgrade")}},
		{`INSERT INTO enqueue_dedup (recipient, sender, client_msg_id, seq, created_at) VALUES (?, x'', ?, 1, ?)`, []any{r, []byte("m1"), time.Now().UnixNano()}},
		{`INSERT INTO key_packages (identity, fingerprint, package, last_resort, created_at) VALUES (?, ?, ?, 1, 1)`, []any{id, storetest.Key("fp"), []byte("kp")}},
	} {
		if _, err := old.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTestStore(t, path, storetest.Limits())
	var v int
	if err := s.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", v, err, len(migrations))
	}
	got, err := s.Receive(ctx, r, 0, 10)
	if err != nil || len(got) != 1 || string(got[0].Payload) != "before the upgrade" {
		t.Fatalf("Receive after upgrade = %v, %v", got, err)
	}
	if _, dup, err := s.Enqueue(ctx, r, nil, []byte("m1"), []byte("again")); err != nil || !dup {
		t.Fatalf("repeated Enqueue after upgrade: duplicate %v, %v", dup, err)
	}
	if c, err := s.CountKeyPackages(ctx, id); err != nil || !c.LastResort {
		t.Fatalf("CountKeyPackages after upgrade = %+v, %v", c, err)
	}
	// The new tables work on the upgraded file.
	storetest.CreateGroup(t, s, storetest.GroupID("g"), id, r)
	if _, err := s.SubmitCommit(ctx, storetest.GroupID("g"), 0, id, nil, []byte("c"), nil, storetest.Deliver([][]byte{r, id}, [][]byte{r, id}, nil)); err != nil {
		t.Fatal(err)
	}
	got, err = s.Receive(ctx, r, 1, 10)
	if err != nil || len(got) != 1 || string(got[0].Payload) != "c" {
		t.Fatalf("Receive of the commit = %v, %v", got, err)
	}
}

// Closing while calls are in flight: each call either completes or reports
// ErrClosed; nothing panics or hangs.
func TestCloseWhileBusy(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "node.db"), store.Limits{MaxQueueDepth: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	started := make(chan struct{}, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := storetest.Key(fmt.Sprint("busy ", w))
			for i := 0; ; i++ {
				var err error
				switch i % 3 {
				case 0:
					_, _, err = s.Enqueue(ctx, r, nil, nil, []byte("x"))
				case 1:
					_, err = s.Receive(ctx, r, 0, 10)
				case 2:
					_, err = s.FanOut(ctx, storetest.GroupID("busy"), r, nil, []byte("y"), nil)
					if errors.Is(err, store.ErrNotMember) {
						err = nil
					}
				}
				if i == 3 {
					started <- struct{}{}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		n++
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("call during Close: %v, want ErrClosed", err)
		}
	}
	if n != 8 {
		t.Fatalf("%d workers stopped with an error, want all 8", n)
	}
}
