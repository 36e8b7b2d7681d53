package backend

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// Application messages save a group's secret trees alone, onto the state
// written at the join; a daemon restarted with an empty memory decodes
// the state with those ratchets and goes on from them. Had it gone on from
// the state alone, its next messages would reuse generations its peer
// already read, and the peer would refuse them as replays.
func TestGroupMessagesSaveRatchetsAcrossRestart(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	ctx := context.Background()
	open := func(dir string) *store.Store {
		st, err := store.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	stores := []*store.Store{open(dirs[0]), open(dirs[1])}
	users := []*groupsUser{groupsStartOn(t, node, Config{}, stores[0]), groupsStartOn(t, node, Config{}, stores[1])}
	_, gid := groupsForm(t, "ratchets", users[0], users[1])
	id, _ := hex.DecodeString(gid)
	row := func(u *groupsUser) store.Group {
		var sg store.Group
		if err := u.b.view(ctx, func(tx *store.Tx) (err error) { sg, err = tx.Group(id); return }); err != nil {
			t.Fatal(err)
		}
		return sg
	}
	joined := []store.Group{row(users[0]), row(users[1])}
	var want []string
	send := func(from int, n int) {
		t.Helper()
		for range n {
			text := fmt.Sprintf("m%d from %d", len(want), from)
			if _, err := users[from].b.Send(ctx, gid, text, nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, text)
		}
		for _, u := range users {
			groupsWait(t, "every message read", func() bool { return len(groupsTexts(t, u, gid)) >= len(want) })
		}
	}
	send(0, 3)
	send(1, 2)
	for i, u := range users {
		sg := row(u)
		if !bytes.Equal(sg.StateTag, joined[i].StateTag) || !bytes.Equal(sg.State, joined[i].State) || sg.Ratchets == nil {
			t.Fatalf("user %d: messages rewrote the state (tag %x → %x) or saved no ratchets (%d bytes)", i, joined[i].StateTag, sg.StateTag, len(sg.Ratchets))
		}
		t.Logf("user %d: ratchets %d bytes, state %d", i, len(sg.Ratchets), len(sg.State))
		if len(sg.Ratchets)*4 > len(sg.State) {
			t.Fatalf("user %d: ratchets of %d bytes beside a state of %d", i, len(sg.Ratchets), len(sg.State))
		}
	}
	for i := range users {
		users[i].stop()
		stores[i].Close()
		stores[i] = open(dirs[i])
		users[i] = groupsStartOn(t, node, Config{}, stores[i])
	}
	send(0, 3)
	send(1, 3)
	send(0, 1)
	for i, u := range users {
		if got := groupsTexts(t, u, gid); !slices.Equal(got, want) {
			t.Fatalf("user %d read %q, want %q", i, got, want)
		}
		if n := countEvents(t, u.b, store.EventRejected); n != 0 {
			t.Fatalf("user %d rejected %d messages", i, n)
		}
	}
	// A commit writes the whole state again, without ratchets.
	if _, err := users[1].b.Update(ctx, gid); err != nil {
		t.Fatal(err)
	}
	if sg := row(users[1]); sg.Ratchets != nil || bytes.Equal(sg.StateTag, joined[1].StateTag) {
		t.Fatalf("after a commit: ratchets %d bytes, tag %x (joined with %x)", len(sg.Ratchets), sg.StateTag, joined[1].StateTag)
	}
	send(0, 1)
	send(1, 1)
}
