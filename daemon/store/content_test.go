package store

import (
	"bytes"
	"testing"
	"time"
)

// Search matches text literally (LIKE wildcards in it are plain
// characters), Since filters by send time, receipts never go back, and
// expiry deletes the messages due but keeps the newest of a group
// without its text.
func TestContentSearchReceiptsExpiry(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	g := testGroupID(1)
	sender := bytes.Repeat([]byte{9}, 32)
	texts := []string{"100% sure", "100 percent", "a_b", "axb", "Lunch"}
	mustUpdate(t, st, func(tx *Tx) error {
		if err := tx.PutGroup(Group{ID: g, Name: "g", State: []byte("s"), DisappearAfter: time.Minute}); err != nil {
			return err
		}
		for i, text := range texts {
			m := Message{GroupID: g, MessageID: []byte{1, byte(i)}, Sender: sender, Text: text, SentAt: time.Unix(int64(100+i), 0)}
			if i >= 3 {
				m.ExpiresAt = time.Unix(int64(1000+i), 0)
			}
			if _, err := tx.AppendMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	find := func(q MessageQuery) (out []string) {
		mustUpdate(t, st, func(tx *Tx) error {
			q.GroupID = g
			ms, _, err := tx.Messages(q)
			for _, m := range ms {
				out = append(out, m.Text)
			}
			return err
		})
		return out
	}
	for search, want := range map[string]int{"100%": 1, "a_b": 1, "lunch": 1, "100": 2, "%": 1} {
		if got := find(MessageQuery{Search: search}); len(got) != want {
			t.Errorf("search %q: %q, want %d", search, got, want)
		}
	}
	if got := find(MessageQuery{Since: time.Unix(103, 0)}); len(got) != 2 {
		t.Errorf("since: %q", got)
	}
	mustUpdate(t, st, func(tx *Tx) error {
		grp, err := tx.Group(g)
		if err != nil || grp.DisappearAfter != time.Minute {
			t.Errorf("group timer: %v %v", grp.DisappearAfter, err)
		}
		id := []byte{1, 0}
		for _, tc := range []struct {
			status  int
			changed bool
		}{{1, true}, {2, true}, {1, false}, {2, false}} {
			if changed, err := tx.PutReceipt(g, id, sender, tc.status, time.Unix(5, 0)); err != nil || changed != tc.changed {
				t.Errorf("receipt %d: changed %v, %v", tc.status, changed, err)
			}
		}
		rs, err := tx.Receipts(g, id)
		if err != nil || len(rs) != 1 || rs[0].Status != 2 {
			t.Errorf("receipts: %+v %v", rs, err)
		}
		next, ok, err := tx.NextExpiry()
		if err != nil || !ok || !next.Equal(time.Unix(1003, 0)) {
			t.Errorf("next expiry %v %v %v", next, ok, err)
		}
		n, err := tx.ExpireMessages(time.Unix(2000, 0))
		if err != nil || n != 2 {
			t.Errorf("expired %d, %v", n, err)
		}
		_, ok, err = tx.NextExpiry()
		if err != nil || ok {
			t.Errorf("something left to expire: %v %v", ok, err)
		}
		return nil
	})
	if got := find(MessageQuery{}); len(got) != 4 || got[3] != "" {
		t.Errorf("after expiry: %q", got)
	}
}
