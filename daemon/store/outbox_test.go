package store

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

func FuzzUnpackRecipients(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, 32))
	f.Add(bytes.Repeat([]byte{2}, 33))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := unpackRecipients(b)
		if err != nil {
			if len(b)%recipientsSize == 0 {
				t.Fatalf("valid length %d refused: %v", len(b), err)
			}
			return
		}
		back, err := packRecipients(rs)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip: %x -> %x (%v)", b, back, err)
		}
	})
}

func TestOutboxIntentRoundTrip(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	intent := []byte{1, 'i', 0, 32}
	var with, without OutboxItem
	mustUpdate(t, st, func(tx *Tx) (err error) {
		if with, err = tx.AddOutbox(OutboxItem{Kind: OutboxCommit, GroupID: []byte("g"), Payload: []byte("commit"), ClientMsgID: []byte("c:1"), Intent: intent}); err != nil {
			return err
		}
		without, err = tx.AddOutbox(OutboxItem{Kind: OutboxCommit, GroupID: []byte("g"), Payload: []byte("commit2"), ClientMsgID: []byte("c:2")})
		return err
	})
	if err := st.View(context.Background(), func(tx *Tx) error {
		got, err := tx.Outbox(with.ID)
		if err != nil {
			return err
		}
		if !bytes.Equal(got.Intent, intent) {
			t.Errorf("Outbox intent = %x, want %x", got.Intent, intent)
		}
		got, err = tx.Outbox(without.ID)
		if err != nil {
			return err
		}
		if len(got.Intent) != 0 {
			t.Errorf("intent of an item without one = %x", got.Intent)
		}
		pc, err := tx.PendingCommits()
		if err != nil {
			return err
		}
		if len(pc) != 2 || !bytes.Equal(pc[0].Intent, intent) || len(pc[1].Intent) != 0 {
			t.Errorf("PendingCommits = %+v", pc)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A stale commit whose intent waits to run again leaves the pending
	// commits, keeping its intent.
	mustUpdate(t, st, func(tx *Tx) error { return tx.SetOutboxState(with.ID, OutboxRerun, "stale") })
	if err := st.View(context.Background(), func(tx *Tx) error {
		pc, err := tx.PendingCommits()
		if err != nil {
			return err
		}
		rc, err := tx.RerunCommits()
		if err != nil {
			return err
		}
		if len(pc) != 1 || pc[0].ID != without.ID || len(rc) != 1 || rc[0].ID != with.ID || !bytes.Equal(rc[0].Intent, intent) || rc[0].State != OutboxRerun {
			t.Errorf("pending %+v, to run again %+v", pc, rc)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateOutboxIntent opens a database written at schema version 2
// (before outbox intents) with a pending commit in it.
func TestMigrateOutboxIntent(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO outbox (kind, group_id, client_msg_id, payload, recipients, state, created_at, updated_at)
		VALUES ('commit', x'67', x'633a31', x'01', x'', 'pending', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	st := openTestStore(t, dir)
	var v int
	if err := st.db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion || SchemaVersion < 3 {
		t.Fatalf("user_version = %d, SchemaVersion = %d", v, SchemaVersion)
	}
	mustUpdate(t, st, func(tx *Tx) error {
		pc, err := tx.PendingCommits()
		if err != nil {
			return err
		}
		if len(pc) != 1 || !bytes.Equal(pc[0].ClientMsgID, []byte("c:1")) || len(pc[0].Intent) != 0 {
			t.Fatalf("migrated pending commits = %+v", pc)
		}
		_, err = tx.AddOutbox(OutboxItem{Kind: OutboxCommit, Payload: []byte("c"), ClientMsgID: []byte("c:2"), Intent: []byte("x")})
		return err
	})
}

// A group message the node fans out keeps no recipient list, and reads
// back as such.
func TestOutboxFanOutWithoutRecipients(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	gid := bytes.Repeat([]byte{9}, GroupIDSize)
	mustUpdate(t, st, func(tx *Tx) error {
		_, err := tx.AddOutbox(OutboxItem{Kind: OutboxApplication, GroupID: gid, Payload: []byte("ct"), FanOut: true})
		return err
	})
	var got []OutboxItem
	mustUpdate(t, st, func(tx *Tx) (err error) { got, err = tx.PendingSends(10, nil, false); return })
	if len(got) != 1 || !got[0].FanOut || len(got[0].Recipients) != 0 {
		t.Fatalf("pending: %+v", got)
	}
}
