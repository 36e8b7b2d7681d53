package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// A database at the version before bodies and entries, holding direct
// messages (one from a stranger) and fanned-out ones sharing a payload,
// interleaved, migrates: every message is received once, in order, with its
// sender, client message id and group sequence; the strangers' quota is
// released by the ack; and the bodies go with their last entries.
func TestMigrateQueueRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	ctx := context.Background()
	before := -1
	for i, m := range migrations {
		if m == migrationQueueRows {
			before = i
		}
	}
	if before < 0 {
		t.Fatal("migrationQueueRows is not in the list")
	}
	old, err := openDB(path, false, DefaultWriterCacheMiB)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("PRAGMA journal_mode=WAL")
	for _, m := range migrations[:before] {
		exec(m)
	}
	exec(fmt.Sprintf("PRAGMA user_version = %d", before))

	a, b, c := storetest.Key("a"), storetest.Key("b"), storetest.Key("c")
	sender, stranger := storetest.Key("sender"), storetest.Key("stranger")
	type want struct {
		payload, sender, id string
		groupSeq            uint64
	}
	wants := map[string][]want{}
	seqs := map[string]int{}
	direct := func(r, from []byte, id, payload string, strange bool) {
		seqs[string(r)]++
		st := 0
		if strange {
			st = 1
			exec(`UPDATE queues SET stranger_count = stranger_count + 1, stranger_bytes = stranger_bytes + ? WHERE recipient = ?`, len(payload), r)
		}
		exec(`INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, enqueued_at, stranger) VALUES (?, ?, ?, ?, ?, 1, ?)`,
			r, seqs[string(r)], from, []byte(id), []byte(payload), st)
		wants[string(r)] = append(wants[string(r)], want{payload, string(from), id, 0})
	}
	fanOut := func(id, payload string, groupSeq uint64, rs ...[]byte) {
		res, err := old.ExecContext(ctx, `INSERT INTO payloads (data, refs) VALUES (?, ?)`, []byte(payload), len(rs))
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := res.LastInsertId()
		for _, r := range rs {
			seqs[string(r)]++
			exec(`INSERT INTO messages (recipient, seq, sender, client_msg_id, payload, enqueued_at, payload_ref, sequenced, group_seq) VALUES (?, ?, ?, ?, x'', 2, ?, 1, ?)`,
				r, seqs[string(r)], sender, []byte(id), ref, groupSeq)
			wants[string(r)] = append(wants[string(r)], want{payload, string(sender), id, groupSeq})
		}
	}
	for _, r := range [][]byte{a, b, c} {
		exec(`INSERT INTO queues (recipient, last_seq, depth) VALUES (?, 0, 0)`, r)
	}
	direct(a, sender, "d1", "direct to a", false)
	fanOut("f1", "to all", 1, a, b, c)
	direct(b, stranger, "", "from a stranger", true)
	fanOut("f2", "to a and c", 2, a, c)
	direct(c, sender, "d2", "direct to c", false)
	fanOut("f3", "to b and c", 3, b, c)
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
	var bodies int
	if err := s.w.QueryRow(`SELECT count(*) FROM bodies`).Scan(&bodies); err != nil || bodies != 6 {
		t.Fatalf("%d bodies after the migration, %v; want 6 (3 direct, 3 shared)", bodies, err)
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
			if m.Seq != uint64(i+1) || string(m.Payload) != w[i].payload || string(m.Sender) != w[i].sender ||
				string(m.ClientMsgID) != w[i].id || m.GroupSeq != w[i].groupSeq || m.Sequenced != (w[i].groupSeq != 0) {
				t.Fatalf("queue of %x, message %d = seq %d %q from %x id %q group seq %d; want %+v",
					r[:4], i, m.Seq, m.Payload, m.Sender[:min(4, len(m.Sender))], m.ClientMsgID, m.GroupSeq, w[i])
			}
		}
		seq, _, err := s.Enqueue(ctx, r, sender, nil, []byte("after"))
		if err != nil || seq != uint64(len(w)+1) {
			t.Fatalf("Enqueue after the migration = seq %d, %v; want %d", seq, err, len(w)+1)
		}
	}
	var count, size int
	if err := s.w.QueryRow(`SELECT stranger_count, stranger_bytes FROM queues WHERE recipient = ?`, b).Scan(&count, &size); err != nil || count != 1 || size != len("from a stranger") {
		t.Fatalf("strangers' share of b's queue = %d messages, %d bytes, %v", count, size, err)
	}
	for _, r := range [][]byte{a, b, c} {
		if _, err := s.Ack(ctx, r, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.w.QueryRow(`SELECT stranger_count, stranger_bytes FROM queues WHERE recipient = ?`, b).Scan(&count, &size); err != nil || count != 0 || size != 0 {
		t.Fatalf("strangers' share of b's queue after the ack = %d messages, %d bytes, %v", count, size, err)
	}
	if err := s.w.QueryRow(`SELECT count(*) FROM bodies`).Scan(&bodies); err != nil || bodies != 0 {
		t.Fatalf("%d bodies left after every queue is acknowledged, %v", bodies, err)
	}
	if got, err := s.Receive(ctx, a, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("Receive after the ack = %d messages, %v", len(got), err)
	}
}
