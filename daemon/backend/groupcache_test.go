package backend

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// A group saved by a committed transaction is handed, decoded, to the
// next one; one changed by a transaction that then failed is not: the
// next load is what the disk holds, and the messages sent after it
// decrypt at the other member in order.
func TestGroupCacheFollowsTheDisk(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	g, gid := groupsForm(t, "cache", alice, bob)
	ctx := context.Background()
	load := func() (store.Group, *mls.Group) {
		var sg store.Group
		var mg *mls.Group
		alice.b.gmu.Lock()
		defer alice.b.gmu.Unlock()
		if err := alice.b.update(ctx, func(tx *store.Tx) (err error) {
			sg, mg, err = loadGroup(tx, g.ID)
			if err == nil {
				err = saveGroup(tx, &sg, mg)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return sg, mg
	}
	_, first := load()
	if _, again := load(); again != first {
		t.Fatal("a saved group was decoded again")
	}
	// A send whose transaction fails after encrypting: the ratchet moved
	// in memory, not on disk.
	fail := errors.New("disk full")
	alice.b.gmu.Lock()
	err := alice.b.update(ctx, func(tx *store.Tx) error {
		sg, mg, err := loadGroup(tx, g.ID)
		if err != nil {
			return err
		}
		if _, err := mg.Protect([]byte("lost"), nil); err != nil {
			return err
		}
		if err := saveGroup(tx, &sg, mg); err != nil {
			return err
		}
		return fail
	})
	alice.b.gmu.Unlock()
	if !errors.Is(err, fail) {
		t.Fatal(err)
	}
	sg, mg := load()
	if mg == first {
		t.Fatal("the group changed by a failed transaction was handed out again")
	}
	state, err := mg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var disk store.Group
	if err := alice.b.view(ctx, func(tx *store.Tx) (err error) { disk, err = tx.Group(g.ID); return }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state, disk.State) || !bytes.Equal(sg.State, disk.State) {
		t.Fatal("the group loaded is not what the disk holds")
	}
	for _, text := range []string{"one", "two", "three"} {
		if _, err := alice.b.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	groupsWait(t, "three messages at bob", func() bool { return len(groupsTexts(t, bob, gid)) >= 3 })
	if got := groupsTexts(t, bob, gid); len(got) != 3 || got[0] != "one" || got[2] != "three" {
		t.Fatalf("bob has %q", got)
	}
}
