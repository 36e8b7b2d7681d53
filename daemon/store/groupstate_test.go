package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// Commits keep their Welcome and its recipients; pending commits are
// listed apart from application messages; joins by Welcome are reported
// once.
func TestCommitOutboxAndJoinReports(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	var commit OutboxItem
	mustUpdate(t, st, func(tx *Tx) error {
		if err := tx.PutGroup(Group{ID: testGroupID(1), Name: "created", State: []byte("s"), JoinReported: true}); err != nil {
			return err
		}
		if err := tx.PutGroup(Group{ID: testGroupID(2), Name: "invited", State: []byte("s")}); err != nil {
			return err
		}
		if _, err := tx.AddOutbox(OutboxItem{Kind: OutboxApplication, GroupID: testGroupID(1), Payload: []byte("m"), Recipients: [][]byte{k1}}); err != nil {
			return err
		}
		var err error
		commit, err = tx.AddOutbox(OutboxItem{Kind: OutboxCommit, GroupID: testGroupID(1), ClientMsgID: []byte("c1"), Payload: []byte("commit"),
			Recipients: [][]byte{k1}, Welcome: []byte("welcome"), WelcomeRecipients: [][]byte{k2}})
		if err != nil {
			return err
		}
		_, err = tx.AddOutbox(OutboxItem{Kind: OutboxCommit, Payload: []byte("x"), WelcomeRecipients: [][]byte{{1, 2}}})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("short welcome recipient: %v", err)
		}
		return nil
	})
	st.Close()
	st = openTestStore(t, dir)
	err := st.View(context.Background(), func(tx *Tx) error {
		pc, err := tx.PendingCommits()
		if err != nil {
			return err
		}
		if len(pc) != 1 || pc[0].ID != commit.ID || string(pc[0].Welcome) != "welcome" || len(pc[0].WelcomeRecipients) != 1 || !bytes.Equal(pc[0].WelcomeRecipients[0], k2) {
			t.Errorf("pending commits: %+v", pc)
		}
		un, err := tx.UnreportedJoins()
		if err != nil {
			return err
		}
		if len(un) != 1 || un[0].Name != "invited" || un[0].JoinReported {
			t.Errorf("unreported joins: %+v", un)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, st, func(tx *Tx) error {
		if err := tx.MarkJoinReported(testGroupID(2)); err != nil {
			return err
		}
		return tx.SetOutboxState(commit.ID, OutboxSent, "")
	})
	st.View(context.Background(), func(tx *Tx) error {
		un, _ := tx.UnreportedJoins()
		pc, _ := tx.PendingCommits()
		if len(un) != 0 || len(pc) != 0 {
			t.Errorf("after marking: joins %+v commits %+v", un, pc)
		}
		return nil
	})
}
