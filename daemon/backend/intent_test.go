package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

func TestCommitPlanEncoding(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, p := range []commitPlan{
		{kind: intentInvite, peers: []ed25519.PublicKey{k1, k2}},
		{kind: intentRemove, peers: []ed25519.PublicKey{k2}},
		{kind: intentUpdate},
		{kind: intentProposals},
	} {
		enc, err := p.encode()
		if err != nil {
			t.Fatalf("encode %s: %v", p.kind, err)
		}
		got, err := decodeCommitPlan(enc)
		if err != nil {
			t.Fatalf("decode %s (%s): %v", p.kind, enc, err)
		}
		if got.kind != p.kind || len(got.peers) != len(p.peers) {
			t.Fatalf("round trip: %+v -> %+v", p, got)
		}
		for i := range p.peers {
			if !bytes.Equal(got.peers[i], p.peers[i]) {
				t.Fatalf("round trip peer %d: %x -> %x", i, p.peers[i], got.peers[i])
			}
		}
	}
	for _, bad := range []string{
		``, `{}`, `null`, `[]`,
		`{"v":2,"kind":"update"}`,
		`{"v":1,"kind":"shout"}`,
		`{"v":1,"kind":"invite"}`,
		`{"v":1,"kind":"invite","peers":["0102"]}`,
		`{"v":1,"kind":"remove","peers":[]}`,
		`{"v":1,"kind":"update","peers":["` + FormatKey(k1) + `"]}`,
		`{"v":1,"kind":"remove","peers":["` + FormatKey(k1) + `","` + FormatKey(k2) + `"]}`,
	} {
		if _, err := decodeCommitPlan([]byte(bad)); !errors.Is(err, errBadIntent) {
			t.Errorf("decode %q: err = %v, want errBadIntent", bad, err)
		}
	}
	if _, err := (commitPlan{kind: intentRemove}).encode(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("encode of a remove without a member: %v", err)
	}
}

func FuzzDecodeCommitPlan(f *testing.F) {
	f.Add([]byte(`{"v":1,"kind":"update"}`))
	f.Add([]byte(`{"v":1,"kind":"invite","peers":["` + FormatKey(make([]byte, 32)) + `"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeCommitPlan(b)
		if err != nil {
			if !errors.Is(err, errBadIntent) {
				t.Fatalf("error without errBadIntent: %v", err)
			}
			return
		}
		if _, err := p.encode(); err != nil {
			t.Fatalf("decoded plan does not encode: %v", err)
		}
	})
}

// intentCommits lists the commit outbox items of a store, oldest first.
func intentCommits(t *testing.T, st *store.Store) []store.OutboxItem {
	t.Helper()
	var out []store.OutboxItem
	err := st.View(context.Background(), func(tx *store.Tx) error {
		for id := int64(1); ; id++ {
			it, err := tx.Outbox(id)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if it.Kind == store.OutboxCommit {
				out = append(out, it)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// intentCrash leaves a commit of alice's pending: the node stops between
// storing the commit and submitting it, and alice's daemon stops. The node
// comes back on the same folder and address, bob commits (win, default an
// update; it returns nil once bob's commit is in, so
// alice's pending commit is stale), and alice's daemon starts again on the
// same store. It returns the node, alice's new daemon and the epoch bob's update
// reached (a later one than that of alice's pending commit).
func intentCrash(t *testing.T, dir string, node *testnode.Node, alice, bob *groupsUser, gid string, commit, win func() error, setup ...func(*Backend)) (*testnode.Node, *groupsUser, uint64) {
	t.Helper()
	ctx := context.Background()
	var once sync.Once
	alice.b.beforeSubmit = func() { once.Do(node.Stop) }
	if err := commit(); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("commit with the node gone: %v", err)
	}
	alice.stop()
	st := alice.b.st
	if cs := intentCommits(t, st); len(cs) == 0 || cs[len(cs)-1].State != store.OutboxPending || len(cs[len(cs)-1].Intent) == 0 {
		t.Fatalf("alice's last commit is not pending with its intent: %+v", cs)
	}
	node = testnode.StartNode(t, dir, node.Addr)
	before, err := bob.b.Members(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if win == nil {
		win = func() error { _, err := bob.b.Update(ctx, gid); return err }
	}
	groupsWait(t, "bob commits", func() bool { return win() == nil })
	// bob's first try may have been cut off with the old node and been
	// accepted on his reconnect, so his update may take two epochs.
	after, err := bob.b.Members(ctx, gid)
	if err != nil || after.Epoch <= before.Epoch {
		t.Fatalf("bob's update: epoch %d -> %d, %v", before.Epoch, after.Epoch, err)
	}
	return node, groupsStartOn(t, node, Config{}, st, setup...), after.Epoch
}

// intentSameEpoch waits until all users are at epoch with the same epoch
// authenticator.
func intentSameEpoch(t *testing.T, gid string, epoch uint64, users ...*groupsUser) {
	t.Helper()
	ctx := context.Background()
	groupsWait(t, "all at the same epoch", func() bool {
		var auth []byte
		for _, u := range users {
			m, err := u.b.Members(ctx, gid)
			if err != nil || m.Epoch != epoch || len(m.Members) != len(users) {
				return false
			}
			if auth != nil && !bytes.Equal(auth, m.EpochAuthenticator) {
				t.Fatalf("members disagree on the epoch authenticator of epoch %d", epoch)
			}
			auth = m.EpochAuthenticator
		}
		return true
	})
}

// An invitation whose pending commit is found stale when alice's restarted
// daemon submits it again is run again on the new epoch: carol joins.
func TestGroupStaleInviteRerunAfterRestart(t *testing.T) {
	dir := t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	g, gid := groupsForm(t, "rerun", alice, bob)
	node, alice, epoch := intentCrash(t, dir, node, alice, bob, gid, func() error {
		_, _, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{carol.id})
		return err
	}, nil)
	j, err := carol.b.Join(ctx, 15*time.Second)
	if err != nil || len(j) != 1 || !bytes.Equal(j[0].ID, g.ID) {
		t.Fatalf("carol join: %v %v", j, err)
	}
	// After bob's update, the invitation run again.
	intentSameEpoch(t, gid, epoch+1, alice, bob, carol)
	cs := intentCommits(t, alice.b.st)
	if len(cs) != 3 || cs[1].State != store.OutboxDropped || cs[2].State != store.OutboxSent {
		t.Fatalf("alice's commits: %+v", cs)
	}
	if p, err := decodeCommitPlan(cs[2].Intent); err != nil || p.kind != intentInvite || len(p.peers) != 1 || !bytes.Equal(p.peers[0], carol.id) {
		t.Fatalf("intent of the re-run: %+v %v", p, err)
	}
	if _, err := carol.b.Send(ctx, gid, "hello from carol", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.b.Send(ctx, gid, "welcome carol", nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*groupsUser{alice, bob, carol} {
		groupsWait(t, "the two messages", func() bool {
			var n int
			for _, s := range groupsTexts(t, u, gid) {
				if s == "hello from carol" || s == "welcome carol" {
					n++
				}
			}
			return n == 2
		})
	}
}

// A self-update whose pending commit is found stale after a restart is run
// again: alice's keys move on in the epoch after bob's update.
func TestGroupStaleUpdateRerunAfterRestart(t *testing.T) {
	dir := t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "rerun update", alice, bob)
	node, alice, epoch := intentCrash(t, dir, node, alice, bob, gid, func() error {
		_, err := alice.b.Update(ctx, gid)
		return err
	}, nil)
	// After bob's update, alice's update run again.
	intentSameEpoch(t, gid, epoch+1, alice, bob)
	cs := intentCommits(t, alice.b.st)
	if len(cs) != 3 || cs[1].State != store.OutboxDropped || cs[2].State != store.OutboxSent {
		t.Fatalf("alice's commits: %+v", cs)
	}
	if p, err := decodeCommitPlan(cs[2].Intent); err != nil || p.kind != intentUpdate {
		t.Fatalf("intent of the re-run: %+v %v", p, err)
	}
	if _, err := bob.b.Send(ctx, gid, "after", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "alice reads bob", func() bool {
		txt := groupsTexts(t, alice, gid)
		return len(txt) == 1 && txt[0] == "after"
	})
}

// The intent of a stale commit survives a stop before its job ran: the
// item waits in state OutboxRerun, and the next start runs it.
func TestGroupStaleInviteRerunSurvivesStop(t *testing.T) {
	dir := t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	g, gid := groupsForm(t, "rerun later", alice, bob)
	held := make(chan struct{})
	var once sync.Once
	node, alice, epoch := intentCrash(t, dir, node, alice, bob, gid, func() error {
		_, _, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{carol.id})
		return err
	}, nil, func(b *Backend) {
		b.beforeRerun = func(ctx context.Context) {
			once.Do(func() { close(held) })
			<-ctx.Done()
		}
	})
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the intent was never scheduled to run again")
	}
	alice.stop()
	st := alice.b.st
	cs := intentCommits(t, st)
	if len(cs) != 2 || cs[1].State != store.OutboxRerun || len(cs[1].Intent) == 0 {
		t.Fatalf("alice's commits after the stop: %+v", cs)
	}
	alice = groupsStartOn(t, node, Config{}, st)
	j, err := carol.b.Join(ctx, 15*time.Second)
	if err != nil || len(j) != 1 || !bytes.Equal(j[0].ID, g.ID) {
		t.Fatalf("carol join: %v %v", j, err)
	}
	intentSameEpoch(t, gid, epoch+1, alice, bob, carol)
	cs = intentCommits(t, st)
	if len(cs) != 3 || cs[1].State != store.OutboxDropped || cs[2].State != store.OutboxSent {
		t.Fatalf("alice's commits: %+v", cs)
	}
}

// A removal whose pending commit is found stale after a restart, when the
// winning commit removed the member already, is done: the re-run finds
// nothing left to do and commits nothing.
func TestGroupStaleRemoveRerunMemberGone(t *testing.T) {
	dir := t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "rerun remove", alice, bob, carol)
	_, alice, epoch := intentCrash(t, dir, node, alice, bob, gid, func() error {
		_, err := alice.b.Remove(ctx, gid, carol.id)
		return err
	}, func() error {
		// bob's first try may have been accepted on his reconnect.
		if m, err := bob.b.Members(ctx, gid); err == nil && len(m.Members) == 2 {
			return nil
		}
		_, err := bob.b.Remove(ctx, gid, carol.id)
		return err
	})
	groupsWait(t, "alice's removal closed", func() bool {
		cs := intentCommits(t, alice.b.st)
		return len(cs) == 2 && cs[1].State == store.OutboxDropped
	})
	cs := intentCommits(t, alice.b.st)
	if want := "run again: nothing left to do"; cs[1].LastError != want {
		t.Fatalf("alice's removal closed with %q, want %q", cs[1].LastError, want)
	}
	intentSameEpoch(t, gid, epoch, alice, bob)
	if _, err := alice.b.Send(ctx, gid, "just us", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob reads alice", func() bool {
		txt := groupsTexts(t, bob, gid)
		return len(txt) == 1 && txt[0] == "just us"
	})
}
