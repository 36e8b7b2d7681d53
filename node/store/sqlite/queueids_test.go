package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// A version-11 database, whose entries are keyed by recipient, holding
// direct messages (one from a stranger) and a body shared by three queues,
// migrates to queue ids: every message is received once, in order, with its
// body; numbering goes on where it stopped, for direct messages and a
// fan-out alike, and a new queue gets an id of its own; the ack releases the
// stranger's share and the bodies, and expiry still finds old entries.
func TestMigrateQueueIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	ctx := context.Background()
	before := -1
	for i, m := range migrations {
		if m == migrationQueueIDs {
			before = i
		}
	}
	if before < 0 {
		t.Fatal("migrationQueueIDs is not in the list")
	}
	old, err := openDB(path, false, DefaultWriterCacheMiB)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) int64 {
		t.Helper()
		res, err := old.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		id, _ := res.LastInsertId()
		return id
	}
	exec("PRAGMA journal_mode=WAL")
	for _, m := range migrations[:before] {
		exec(m)
	}
	exec(fmt.Sprintf("PRAGMA user_version = %d", before))

	a, b, c := storetest.Key("a"), storetest.Key("b"), storetest.Key("c")
	sender, stranger := storetest.Key("sender"), storetest.Key("stranger")
	wants := map[string][]string{}
	seqs := map[string]int{}
	entry := func(r []byte, body int64, at int64, strangerBytes any, payload string) {
		seqs[string(r)]++
		exec(`INSERT INTO entries (recipient, seq, body, enqueued_at, stranger_bytes) VALUES (?, ?, ?, ?, ?)`,
			r, seqs[string(r)], body, at, strangerBytes)
		wants[string(r)] = append(wants[string(r)], payload)
	}
	direct := func(r, from []byte, payload string, at int64, strange bool) {
		body := exec(`INSERT INTO bodies (sender, client_msg_id, payload, sequenced, group_seq, refs) VALUES (?, ?, ?, 0, 0, 1)`,
			from, []byte(payload), []byte(payload))
		var counted any
		if strange {
			counted = len(payload)
			exec(`UPDATE queues SET stranger_count = stranger_count + 1, stranger_bytes = stranger_bytes + ? WHERE recipient = ?`, len(payload), r)
		}
		entry(r, body, at, counted, payload)
	}
	for _, r := range [][]byte{c, a, b} {
		exec(`INSERT INTO queues (recipient, last_seq, depth) VALUES (?, 0, 0)`, r)
	}
	now := time.Now().UnixNano()
	direct(a, sender, "direct to a", now, false)
	shared := exec(`INSERT INTO bodies (sender, client_msg_id, payload, sequenced, group_seq, refs) VALUES (?, 'f1', 'to all three', 1, 1, 3)`, sender)
	for _, r := range [][]byte{a, b, c} {
		entry(r, shared, now, nil, "to all three")
	}
	direct(b, stranger, "from a stranger", now, true)
	direct(c, sender, "old, to c", 1, false)
	for r, n := range seqs {
		exec(`UPDATE queues SET last_seq = ?, depth = ? WHERE recipient = ?`, n, n, []byte(r))
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTestStore(t, path, storetest.Limits())
	var v int
	if err := s.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", v, err, len(migrations))
	}
	var ids int
	if err := s.w.QueryRow(`SELECT count(DISTINCT qid) FROM queues`).Scan(&ids); err != nil || ids != 3 {
		t.Fatalf("%d distinct queue ids for 3 queues, %v", ids, err)
	}
	for _, r := range [][]byte{a, b, c} {
		got, err := s.Receive(ctx, r, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		w := wants[string(r)]
		if len(got) != len(w) {
			t.Fatalf("queue of %x holds %d messages, want %d", r[:4], len(got), len(w))
		}
		for i, m := range got {
			if m.Seq != uint64(i+1) || string(m.Payload) != w[i] {
				t.Fatalf("queue of %x, message %d = seq %d %q; want %d %q", r[:4], i, m.Seq, m.Payload, i+1, w[i])
			}
		}
		seq, _, err := s.Enqueue(ctx, r, sender, nil, []byte("after"))
		if err != nil || seq != uint64(len(w)+1) {
			t.Fatalf("Enqueue after the migration = seq %d, %v; want %d", seq, err, len(w)+1)
		}
	}

	// A fan-out reaches the migrated queues and a new one, numbered on.
	g, d := storetest.GroupID("after"), storetest.Key("d")
	if err := s.CreateGroup(ctx, g, sender, 0, []byte("view"), [][]byte{sender, a, b, d}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FanOut(ctx, g, sender, []byte("f2"), []byte("fan-out after"), nil); err != nil {
		t.Fatal(err)
	}
	for r, want := range map[string]uint64{string(a): 4, string(b): 4, string(d): 1} {
		got, err := s.Receive(ctx, []byte(r), want-1, 10)
		if err != nil || len(got) != 1 || got[0].Seq != want || string(got[0].Payload) != "fan-out after" {
			t.Fatalf("queue of %x after the fan-out = %+v, %v; want seq %d", r[:4], got, err, want)
		}
	}
	if err := s.w.QueryRow(`SELECT count(DISTINCT qid) FROM queues`).Scan(&ids); err != nil || ids != 4 {
		t.Fatalf("%d distinct queue ids for 4 queues, %v", ids, err)
	}

	// Expiry finds c's old entry by its age and keeps c's depth in step.
	if n, err := s.Expire(ctx, time.Unix(0, 2)); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	var depth int
	if err := s.w.QueryRow(`SELECT depth FROM queues WHERE recipient = ?`, c).Scan(&depth); err != nil || depth != 2 {
		t.Fatalf("depth of c after the expiry = %d, %v; want 2", depth, err)
	}

	var count, size int
	if err := s.w.QueryRow(`SELECT stranger_count, stranger_bytes FROM queues WHERE recipient = ?`, b).Scan(&count, &size); err != nil || count != 1 || size != len("from a stranger") {
		t.Fatalf("strangers' share of b's queue = %d messages, %d bytes, %v", count, size, err)
	}
	for _, r := range [][]byte{a, b, c, d} {
		if _, err := s.Ack(ctx, r, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.w.QueryRow(`SELECT stranger_count, stranger_bytes FROM queues WHERE recipient = ?`, b).Scan(&count, &size); err != nil || count != 0 || size != 0 {
		t.Fatalf("strangers' share of b's queue after the ack = %d messages, %d bytes, %v", count, size, err)
	}
	var bodies, entries int
	if err := s.w.QueryRow(`SELECT (SELECT count(*) FROM bodies), (SELECT count(*) FROM entries)`).Scan(&bodies, &entries); err != nil || bodies != 0 || entries != 0 {
		t.Fatalf("%d bodies and %d entries left after every queue is acknowledged, %v", bodies, entries, err)
	}
	if err := s.w.QueryRow(`SELECT sum(depth) FROM queues`).Scan(&depth); err != nil || depth != 0 {
		t.Fatalf("queues hold a depth of %d after every ack, %v", depth, err)
	}
}
