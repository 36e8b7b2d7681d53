package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
)

func openTestStore(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustUpdate(t *testing.T, st *Store, fn func(*Tx) error) {
	t.Helper()
	if err := st.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func TestOpenModesAndSchema(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st := openTestStore(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state folder mode = %v, want 0700", fi.Mode().Perm())
	}
	for _, p := range []string{st.Path(), st.Path() + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", p, fi.Mode().Perm())
		}
	}
	var v int
	if err := st.db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion {
		t.Errorf("user_version = %d, want %d", v, SchemaVersion)
	}
}

func TestOpenTightensExistingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openTestStore(t, dir)
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state folder mode = %v, want 0700", fi.Mode().Perm())
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = Open(context.Background(), dir)
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of newer schema: err = %v, want ErrNewerSchema", err)
	}
}

func TestIdentityPersists(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(context.Background(), func(tx *Tx) error { _, err := tx.Identity(); return err })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Identity before put: %v, want ErrNotFound", err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutIdentity(Identity{PrivateKey: priv}) })
	err = st.Update(context.Background(), func(tx *Tx) error {
		_, p2, _ := ed25519.GenerateKey(rand.Reader)
		return tx.PutIdentity(Identity{PrivateKey: p2})
	})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second PutIdentity: %v, want ErrExists", err)
	}
	st.Close()

	st = openTestStore(t, dir)
	var got Identity
	if err := st.View(context.Background(), func(tx *Tx) (err error) { got, err = tx.Identity(); return }); err != nil {
		t.Fatal(err)
	}
	if !got.PrivateKey.Equal(priv) {
		t.Fatal("identity changed across reopen")
	}
	if got.CreatedAt.IsZero() {
		t.Error("CreatedAt not set")
	}
}

func TestRollbackOnError(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	boom := errors.New("boom")
	err := st.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.AppendEvent(Event{Kind: EventConnection, State: "connected"}); err != nil {
			return err
		}
		if err := tx.SetNodeCursor(7); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update err = %v", err)
	}
	st.View(context.Background(), func(tx *Tx) error {
		evs, err := tx.EventsAfter(0, 10)
		if err != nil || len(evs) != 0 {
			t.Errorf("events after rollback: %v %v", evs, err)
		}
		c, err := tx.NodeCursor()
		if err != nil || c != 0 {
			t.Errorf("cursor after rollback: %d %v", c, err)
		}
		return nil
	})
}

func TestViewIsReadOnly(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	err := st.View(context.Background(), func(tx *Tx) error { return tx.SetNodeCursor(1) })
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("write in View: %v, want ErrInvalid", err)
	}
}

func testGroupID(b byte) []byte { return bytes.Repeat([]byte{b}, GroupIDSize) }

func TestMessagesSeqPagingUnread(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	g1, g2 := testGroupID(1), testGroupID(2)
	sender := bytes.Repeat([]byte{9}, 32)
	mustUpdate(t, st, func(tx *Tx) error {
		if err := tx.PutGroup(Group{ID: g1, Name: "one", State: []byte("s1"), Epoch: 1}); err != nil {
			return err
		}
		return tx.PutGroup(Group{ID: g2, Name: "two", State: []byte("s2")})
	})
	mustUpdate(t, st, func(tx *Tx) error {
		for i := 0; i < 5; i++ {
			for _, g := range [][]byte{g1, g2} {
				m, err := tx.AppendMessage(Message{GroupID: g, MessageID: []byte{g[0], byte(i)}, Sender: sender, Text: "hi", SentAt: time.Unix(100, 0)})
				if err != nil {
					return err
				}
				if m.Seq != uint64(i+1) {
					t.Errorf("group %x message %d got seq %d", g[0], i, m.Seq)
				}
			}
		}
		return nil
	})
	// Duplicate message id is refused, history unchanged.
	err := st.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.AppendMessage(Message{GroupID: g1, MessageID: []byte{1, 0}, Text: "again"})
		return err
	})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate message: %v, want ErrExists", err)
	}
	// Unknown group is refused by the foreign key.
	err = st.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.AppendMessage(Message{GroupID: testGroupID(3), MessageID: []byte{1}, Text: "x"})
		return err
	})
	if err == nil {
		t.Fatal("message for unknown group accepted")
	}

	st.View(context.Background(), func(tx *Tx) error {
		page, more, err := tx.Messages(MessageQuery{GroupID: g1, Limit: 2})
		if err != nil || len(page) != 2 || !more || page[0].Seq != 1 || page[1].Seq != 2 {
			t.Fatalf("page 1: %+v more=%v err=%v", page, more, err)
		}
		page, more, err = tx.Messages(MessageQuery{GroupID: g1, After: 4, Limit: 2})
		if err != nil || len(page) != 1 || more || page[0].Seq != 5 {
			t.Fatalf("last page: %+v more=%v err=%v", page, more, err)
		}
		all, _, err := tx.Messages(MessageQuery{})
		if err != nil || len(all) != 10 {
			t.Fatalf("all: %d %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].ID <= all[i-1].ID {
				t.Fatal("global order not increasing")
			}
		}
		if !all[0].SentAt.Equal(time.Unix(100, 0)) || !bytes.Equal(all[0].Sender, sender) {
			t.Errorf("round trip: %+v", all[0])
		}
		return nil
	})

	var ids []int64
	st.View(context.Background(), func(tx *Tx) error {
		page, _, _ := tx.Messages(MessageQuery{GroupID: g1, UnreadOnly: true, Limit: 3})
		for _, m := range page {
			ids = append(ids, m.ID)
		}
		return nil
	})
	mustUpdate(t, st, func(tx *Tx) error { return tx.MarkRead(ids) })
	st.View(context.Background(), func(tx *Tx) error {
		n, _ := tx.CountUnread(g1)
		if n != 2 {
			t.Errorf("unread in g1 = %d, want 2", n)
		}
		n, _ = tx.CountUnread(nil)
		if n != 7 {
			t.Errorf("unread total = %d, want 7", n)
		}
		page, _, _ := tx.Messages(MessageQuery{GroupID: g1, UnreadOnly: true})
		if len(page) != 2 || page[0].Seq != 4 {
			t.Errorf("unread page: %+v", page)
		}
		last, _ := tx.LastSeq(g2)
		if last != 5 {
			t.Errorf("LastSeq = %d", last)
		}
		return nil
	})
}

func TestEventsResumeAndHead(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, st, func(tx *Tx) error {
		for i := 0; i < 5; i++ {
			if _, err := tx.AppendEvent(Event{Kind: EventConnection, State: "connected", Detail: string(rune('a' + i))}); err != nil {
				return err
			}
		}
		return nil
	})
	_, err = func() (Event, error) {
		var e Event
		err := st.Update(context.Background(), func(tx *Tx) (err error) { e, err = tx.AppendEvent(Event{Kind: "bogus"}); return })
		return e, err
	}()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bogus kind: %v", err)
	}
	st.Close()
	st = openTestStore(t, dir)
	st.View(context.Background(), func(tx *Tx) error {
		head, err := tx.EventHead()
		if err != nil || head != 5 {
			t.Fatalf("head = %d %v", head, err)
		}
		evs, err := tx.EventsAfter(3, 0)
		if err != nil || len(evs) != 2 || evs[0].Seq != 4 || evs[0].Detail != "d" || evs[1].Seq != 5 {
			t.Fatalf("after 3: %+v %v", evs, err)
		}
		return nil
	})
}

func TestKeyPackages(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	kp := KeyPackageSecret{Ref: []byte("ref1"), KeyPackage: []byte("pub"), Secrets: []byte("secret"), LastResort: true}
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutKeyPackage(kp) })
	err := st.Update(context.Background(), func(tx *Tx) error { return tx.PutKeyPackage(kp) })
	if !errors.Is(err, ErrExists) {
		t.Fatalf("dup: %v", err)
	}
	mustUpdate(t, st, func(tx *Tx) error { return tx.MarkKeyPackageUploaded(kp.Ref) })
	st.View(context.Background(), func(tx *Tx) error {
		got, err := tx.KeyPackage(kp.Ref)
		if err != nil || !bytes.Equal(got.Secrets, kp.Secrets) || !got.LastResort || got.UploadedAt.IsZero() {
			t.Fatalf("got %+v %v", got, err)
		}
		n, _ := tx.CountKeyPackages()
		if n != 1 {
			t.Errorf("count = %d", n)
		}
		return nil
	})
	mustUpdate(t, st, func(tx *Tx) error { return tx.DeleteKeyPackage(kp.Ref) })
	err = st.View(context.Background(), func(tx *Tx) error { _, err := tx.KeyPackage(kp.Ref); return err })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestGroups(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	g := Group{ID: testGroupID(7), Name: "team", State: []byte{1, 2, 3}, Epoch: 3}
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutGroup(g) })
	g.Epoch, g.State = 4, []byte{4}
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutGroup(g) })
	st.View(context.Background(), func(tx *Tx) error {
		got, err := tx.Group(g.ID)
		if err != nil || got.Epoch != 4 || !bytes.Equal(got.State, []byte{4}) || got.Name != "team" {
			t.Fatalf("got %+v %v", got, err)
		}
		byName, err := tx.GroupsByName("team")
		if err != nil || len(byName) != 1 {
			t.Fatalf("by name: %v %v", byName, err)
		}
		return nil
	})
	g.LeftAt = time.Now()
	mustUpdate(t, st, func(tx *Tx) error { return tx.PutGroup(g) })
	st.View(context.Background(), func(tx *Tx) error {
		cur, _ := tx.Groups(false)
		all, _ := tx.Groups(true)
		if len(cur) != 0 || len(all) != 1 {
			t.Errorf("current %d all %d", len(cur), len(all))
		}
		return nil
	})
}

func TestOutbox(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	r := bytes.Repeat([]byte{5}, 32)
	var it OutboxItem
	mustUpdate(t, st, func(tx *Tx) (err error) {
		it, err = tx.AddOutbox(OutboxItem{Kind: OutboxApplication, Payload: []byte("ct"), Recipients: [][]byte{r, r}, ClientMsgID: []byte("c1")})
		return
	})
	err := st.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.AddOutbox(OutboxItem{Kind: OutboxApplication, Payload: []byte("ct"), ClientMsgID: []byte("c1")})
		return err
	})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("dup client id: %v", err)
	}
	err = st.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.AddOutbox(OutboxItem{Kind: OutboxApplication, Payload: []byte("ct"), Recipients: [][]byte{{1, 2}}})
		return err
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("short recipient: %v", err)
	}
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetOutboxState(it.ID, OutboxPending, "node down") })
	st.View(context.Background(), func(tx *Tx) error {
		p, err := tx.PendingOutbox(0)
		if err != nil || len(p) != 1 || p[0].Attempts != 1 || p[0].LastError != "node down" || len(p[0].Recipients) != 2 || !bytes.Equal(p[0].Recipients[1], r) {
			t.Fatalf("pending: %+v %v", p, err)
		}
		return nil
	})
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetOutboxState(it.ID, OutboxSent, "") })
	st.View(context.Background(), func(tx *Tx) error {
		n, _ := tx.CountPendingOutbox()
		if n != 0 {
			t.Errorf("pending after sent = %d", n)
		}
		got, err := tx.OutboxByClientMsgID([]byte("c1"))
		if err != nil || got.State != OutboxSent {
			t.Errorf("by client id: %+v %v", got, err)
		}
		return nil
	})
}

func TestNodeCursorAndPins(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetNodeCursor(10) })
	err := st.Update(context.Background(), func(tx *Tx) error { return tx.SetNodeCursor(9) })
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("cursor backwards: %v", err)
	}
	certA, _, _ := transport.NewServerCert()
	certB, _, _ := transport.NewServerCert()
	mustUpdate(t, st, func(tx *Tx) error { _, err := tx.PinCert("127.0.0.1:4201", certA); return err })
	st.View(context.Background(), func(tx *Tx) error {
		c, _ := tx.NodeCursor()
		if c != 10 {
			t.Errorf("cursor = %d", c)
		}
		p, err := tx.PinnedCert("127.0.0.1:4201")
		if err != nil || !p.Matches(certA) || p.Matches(certB) || p.Matches([]byte("junk")) {
			t.Errorf("pin: %+v %v", p, err)
		}
		if _, err := tx.PinnedCert("other:1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown pin: %v", err)
		}
		return nil
	})
}

func TestWelcomes(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	var w Welcome
	mustUpdate(t, st, func(tx *Tx) (err error) { w, err = tx.AddWelcome(Welcome{Payload: []byte("w")}); return })
	mustUpdate(t, st, func(tx *Tx) error {
		ws, err := tx.Welcomes(100)
		if err != nil || len(ws) != 1 || ws[0].ID != w.ID {
			t.Fatalf("welcomes %+v %v", ws, err)
		}
		return tx.DeleteWelcome(w.ID)
	})
	err := st.Update(context.Background(), func(tx *Tx) error { return tx.DeleteWelcome(w.ID) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

// TestMessageGroupSeq: the node's per-group number is kept with a message,
// set later for an outgoing one, and a history from before the column
// existed still reads (its messages unnumbered).
func TestMessageGroupSeq(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	g := testGroupID(1)
	mustUpdate(t, st, func(tx *Tx) error {
		if err := tx.PutGroup(Group{ID: g, Name: "one", State: []byte("s")}); err != nil {
			return err
		}
		if _, err := tx.AppendMessage(Message{GroupID: g, MessageID: []byte{1}, Text: "in", GroupSeq: 7}); err != nil {
			return err
		}
		out, err := tx.AppendMessage(Message{GroupID: g, MessageID: []byte{2}, Text: "out", Outgoing: true})
		if err != nil {
			return err
		}
		return tx.SetGroupSeq(g, out.Seq, 9)
	})
	err := st.Update(context.Background(), func(tx *Tx) error { return tx.SetGroupSeq(g, 99, 10) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetGroupSeq of a missing message: %v, want ErrNotFound", err)
	}
	wantGroupSeqs := func(st *Store, want ...uint64) {
		t.Helper()
		var msgs []Message
		if err := st.View(context.Background(), func(tx *Tx) (err error) {
			msgs, _, err = tx.Messages(MessageQuery{GroupID: g})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(msgs) != len(want) {
			t.Fatalf("%d messages, want %d", len(msgs), len(want))
		}
		for i, m := range msgs {
			if m.GroupSeq != want[i] {
				t.Fatalf("message %d (%q) has group seq %d, want %d", m.Seq, m.Text, m.GroupSeq, want[i])
			}
		}
	}
	wantGroupSeqs(st, 7, 9)

	// Back to the schema before group_seq (version 5), with a message
	// written then: what later versions added goes too.
	for _, q := range []string{
		"ALTER TABLE messages DROP COLUMN sender_device",
		"ALTER TABLE messages DROP COLUMN sender_device_name",
		"ALTER TABLE identity DROP COLUMN user_key",
		"ALTER TABLE identity DROP COLUMN user_seed",
		"ALTER TABLE identity DROP COLUMN device_cert",
		"ALTER TABLE identity DROP COLUMN user_cert",
		"DROP TABLE attachments",
		"DROP TABLE direct_chats",
		"DROP INDEX messages_expiry",
		"DROP TABLE receipts",
		"ALTER TABLE groups DROP COLUMN disappear_after",
		"ALTER TABLE messages DROP COLUMN kind",
		"ALTER TABLE messages DROP COLUMN ref",
		"ALTER TABLE messages DROP COLUMN edited_at",
		"ALTER TABLE messages DROP COLUMN deleted",
		"ALTER TABLE messages DROP COLUMN expires_at",
		"ALTER TABLE messages DROP COLUMN group_seq",
		"ALTER TABLE outbox DROP COLUMN fan_out",
		"ALTER TABLE groups DROP COLUMN ratchets",
		"ALTER TABLE groups DROP COLUMN state_tag",
		"PRAGMA user_version = 5",
		`INSERT INTO messages (group_id, seq, message_id, sender, text, sent_at, received_at, read, outgoing)
			VALUES (x'` + hex.EncodeToString(g) + `', 3, x'03', x'', 'old', 0, 0, 0, 0)`,
	} {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	wantGroupSeqs(openTestStore(t, dir), 0, 0, 0)
}

// TestMoveHistoryDropsGroupSeq: history moved to a successor group loses
// the old group's numbers, which the successor's order would repeat.
func TestMoveHistoryDropsGroupSeq(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	from, to := testGroupID(1), testGroupID(2)
	mustUpdate(t, st, func(tx *Tx) error {
		for _, id := range [][]byte{from, to} {
			if err := tx.PutGroup(Group{ID: id, Name: "g", State: []byte("s")}); err != nil {
				return err
			}
		}
		if _, err := tx.AppendMessage(Message{GroupID: from, MessageID: []byte{1}, Text: "old", GroupSeq: 3}); err != nil {
			return err
		}
		return tx.MoveHistory(from, to)
	})
	if err := st.View(context.Background(), func(tx *Tx) error {
		m, err := tx.Message(to, 1)
		if err != nil {
			return err
		}
		if m.Text != "old" || m.GroupSeq != 0 {
			t.Errorf("moved message %q has group seq %d, want 0", m.Text, m.GroupSeq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
