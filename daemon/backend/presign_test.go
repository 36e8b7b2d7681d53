package backend

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"
)

// Texts signed before their transactions (presign.go) read at the other
// member as any others, in order: within an epoch with the signer kept
// from the send before, after a commit of the other member and after one
// of the sender's own (the stale signer dropped and wiped as the commit
// is applied, the next text signed in its transaction), and after a disappearing timer, whose expiry the text
// then carries. Leaving forgets the group's signer.
func TestPresignedTexts(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "presigned", alice, bob)
	ctx := context.Background()
	kept := func() *signerEntry {
		alice.b.signers.mu.Lock()
		defer alice.b.signers.mu.Unlock()
		return alice.b.signers.m[gid]
	}
	var want []string
	send := func(text string) []byte {
		t.Helper()
		want = append(want, text)
		return contentSend(t, text)(alice.b.Send(ctx, gid, text, nil))
	}
	epoch := func(u *groupsUser) uint64 {
		t.Helper()
		g, err := u.b.ResolveGroup(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		return g.Epoch
	}

	send("one")
	first := kept()
	if first == nil || first.s.Epoch() != epoch(alice) {
		t.Fatalf("no signer of the epoch kept after a send: %+v", first)
	}
	signed := alice.b.presignedSent.Load()
	send("two")
	if kept() != first {
		t.Fatal("the signer was replaced within its epoch")
	}
	if alice.b.presignedSent.Load() != signed+1 {
		t.Fatal("the second text of the epoch was not sent as signed before its transaction")
	}

	// Bob's commit, then Alice's own: the kept signer is of the epoch
	// before each time, and the text is signed again in its transaction.
	stale := first
	for _, committer := range []*groupsUser{bob, alice} {
		before := epoch(alice)
		if _, err := committer.b.Update(ctx, gid); err != nil {
			t.Fatal(err)
		}
		groupsWait(t, "alice in the next epoch", func() bool { return epoch(alice) > before })
		if kept() != nil {
			t.Fatal("the signer of the epoch before is kept after the commit")
		}
		if _, err := stale.s.SignApplication([]byte("x"), nil); err == nil {
			t.Fatal("the signer of the epoch before still signs after the commit: not wiped")
		}
		var err error
		for range 50 { // Alice's own commit waits for the node's verdict
			if _, err = alice.b.Send(ctx, gid, "after a commit", nil); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, "after a commit")
		signed := alice.b.presignedSent.Load()
		send("again")
		if alice.b.presignedSent.Load() != signed+1 {
			t.Fatal("the text after the renewed signer was not sent as signed before its transaction")
		}
		now := kept()
		if now == nil || now == stale || now.s.Epoch() != epoch(alice) {
			t.Fatalf("the signer was not renewed in the new epoch: %+v", now)
		}
		if _, err := stale.s.SignApplication([]byte("x"), nil); err == nil {
			t.Fatal("the replaced signer still signs: not wiped")
		}
		stale = now
	}

	if _, err := alice.b.SetDisappearing(ctx, gid, time.Hour); err != nil {
		t.Fatal(err)
	}
	want = append(want, "3600") // the timer, as its history entry reads
	id := send("four")
	groupsWait(t, "bob has every text, in order", func() bool {
		got := slices.DeleteFunc(groupsTexts(t, bob, gid), func(s string) bool { return s == "" })
		if !slices.Equal(got, want) {
			t.Logf("bob has %q, want %q", got, want)
			return false
		}
		return true
	})
	if m, ok := contentMessage(t, bob, gid, id); !ok || m.ExpiresAt.IsZero() {
		t.Fatalf("the text after the timer has no expiry at bob: %+v", m)
	}

	if err := alice.b.Leave(ctx, gid); err != nil {
		t.Fatal(err)
	}
	if kept() != nil {
		t.Fatal("the signer of a group left is kept")
	}
}

// A signer dropped while a caller signs with it is wiped only once that
// caller is done.
func TestReplacedSignerWipedAfterItsLastUser(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "presigned", alice, bob)
	ctx := context.Background()
	contentSend(t, "send")(alice.b.Send(ctx, gid, "one", nil))
	ss := &alice.b.signers
	e := ss.take(gid)
	if e == nil {
		t.Fatal("no signer kept")
	}
	ss.forget(e.groupID) // dropped while in use
	if _, err := e.s.SignApplication([]byte("in use"), nil); err != nil {
		t.Fatalf("a signer in use was wiped: %v", err)
	}
	ss.give(e)
	if _, err := e.s.SignApplication([]byte("done"), nil); err == nil {
		t.Fatal("a retired signer was not wiped after its last user")
	}
}
