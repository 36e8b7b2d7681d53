package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
)

// The group tests play the node's part with plain callbacks: a view is a
// string naming its epoch, and each verdict says who gets what. The store
// must run the callback on the stored view, keep exactly what the verdict
// says, and nothing when the callback refuses.

func runGroups(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Group/Create", testGroupCreate},
		{"Group/Commit", testGroupCommit},
		{"Group/OneCommitPerEpoch", testGroupOneCommitPerEpoch},
		{"Group/RefusedCommitStoresNothing", testGroupRefusedCommit},
		{"Group/ResubmittedCommit", testGroupResubmittedCommit},
		{"Group/ReusedIDOtherContent", testGroupReusedID},
		{"Group/FanOut", testGroupFanOut},
		{"Group/FanOutUpdatesView", testGroupFanOutUpdate},
		{"Group/FanOutBatch", testGroupFanOutBatch},
		{"Group/FanOutBatchFullQueue", testGroupFanOutBatchFullQueue},
		{"Group/FanOutBatchTwoGroups", testGroupFanOutBatchTwoGroups},
		{"Group/PublicView", testGroupPublicView},
		{"Group/RemovedMembers", testGroupRemovedMembers},
		{"Group/FullQueueRefusesAll", testGroupFullQueue},
		{"Group/Invalid", testGroupInvalid},
		{"Group/ConcurrentCommits", testGroupConcurrentCommits},
		{"Group/ConcurrentFanOut", testGroupConcurrentFanOut},
		{"Group/EnqueueIsNotSequenced", testGroupEnqueueNotSequenced},
		{"Group/GroupSeqSameForEveryMember", testGroupSeqSameForEveryMember},
		{"Group/Closed", testGroupClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// GroupID returns a distinct, deterministic 16-byte group id for label.
func GroupID(label string) []byte { return Key("group " + label)[:16] }

func commitBytes(label string, epoch uint64) []byte {
	return []byte(fmt.Sprintf("commit %s at epoch %d", label, epoch))
}

func viewAt(epoch uint64) []byte { return []byte(fmt.Sprintf("view at epoch %d", epoch)) }

// errRefused is what the refusing callbacks return.
var errRefused = errors.New("refused by the node")

// accept returns a check that wants the view of epoch and moves the group
// to roster, sending the commit to recipients and the Welcome to welcomed.
func accept(t *testing.T, roster, recipients, welcomed [][]byte) store.CommitCheck {
	return func(cur store.GroupView) (store.CommitVerdict, error) {
		if !bytes.Equal(cur.View, viewAt(cur.Epoch)) {
			return store.CommitVerdict{}, fmt.Errorf("check saw view %q at epoch %d", cur.View, cur.Epoch)
		}
		return store.CommitVerdict{View: viewAt(cur.Epoch + 1), Roster: roster, Recipients: recipients, WelcomeRecipients: welcomed}, nil
	}
}

func refuse(store.GroupView) (store.CommitVerdict, error) { return store.CommitVerdict{}, errRefused }

// createGroup creates g at epoch with roster (its first entry the creator).
func createGroup(t *testing.T, s store.Store, g []byte, epoch uint64, roster ...[]byte) {
	t.Helper()
	noErr(t, "CreateGroup", s.CreateGroup(testCtx(t), g, roster[0], epoch, viewAt(epoch), roster))
}

func wantGroupState(t *testing.T, s store.Store, g, member []byte, want store.GroupState) {
	t.Helper()
	got, err := s.GroupState(testCtx(t), g, member)
	noErr(t, "GroupState", err)
	if got != want {
		t.Fatalf("GroupState = %+v, want %+v", got, want)
	}
}

func wantStale(t *testing.T, what string, err error, epoch, current uint64) {
	t.Helper()
	wantErr(t, what, err, store.ErrStaleEpoch)
	var se *store.StaleEpochError
	if !errors.As(err, &se) {
		t.Fatalf("%s: %v is not a *StaleEpochError", what, err)
	}
	if se.Epoch != epoch || se.Current != current {
		t.Fatalf("%s: StaleEpochError{Epoch:%d Current:%d}, want {Epoch:%d Current:%d}", what, se.Epoch, se.Current, epoch, current)
	}
}

// wantQueue checks that recipient's queue holds exactly the given payloads,
// in order, all sequenced, from sender.
func wantQueue(t *testing.T, s store.Store, recipient []byte, sender []byte, payloads ...[]byte) {
	t.Helper()
	got, err := s.Receive(testCtx(t), recipient, 0, 1000)
	noErr(t, "Receive", err)
	if len(got) != len(payloads) {
		t.Fatalf("queue of %x holds %d messages, want %d", recipient[:4], len(got), len(payloads))
	}
	for i, m := range got {
		if !bytes.Equal(m.Payload, payloads[i]) || !bytes.Equal(m.Sender, sender) || !m.Sequenced {
			t.Fatalf("queue of %x message %d = %q from %x (sequenced %v), want %q from %x, sequenced",
				recipient[:4], i, m.Payload, m.Sender, m.Sequenced, payloads[i], sender)
		}
		if i > 0 && m.Seq <= got[i-1].Seq {
			t.Fatalf("queue of %x out of order: %v", recipient[:4], seqList(got))
		}
	}
}

func testGroupCreate(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("create")
	alice, bob, mallory := Key("alice"), Key("bob"), Key("mallory")
	// Nobody learns anything of a group never created.
	_, err := s.GroupState(ctx, g, alice)
	wantErr(t, "GroupState of an unknown group", err, store.ErrNotMember)
	_, err = s.FanOut(ctx, g, alice, nil, []byte("early"), nil)
	wantErr(t, "FanOut to an unknown group", err, store.ErrNotMember)
	_, err = s.SubmitCommit(ctx, g, 0, alice, nil, commitBytes("a", 0), nil, accept(t, [][]byte{alice}, nil, nil))
	wantErr(t, "SubmitCommit to an unknown group", err, store.ErrNotMember)

	createGroup(t, s, g, 4, alice, bob)
	wantGroupState(t, s, g, bob, store.GroupState{Epoch: 4, Members: 2})
	// The id is claimed once, by whoever comes first.
	err = s.CreateGroup(ctx, g, mallory, 0, []byte("mine"), [][]byte{mallory})
	wantErr(t, "second CreateGroup", err, store.ErrGroupExists)
	_, err = s.GroupState(ctx, g, mallory)
	wantErr(t, "GroupState of a non-member", err, store.ErrNotMember)
	wantGroupState(t, s, g, alice, store.GroupState{Epoch: 4, Members: 2})
}

func testGroupCommit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("commit")
	alice, bob, carol, dave := Key("alice"), Key("bob"), Key("carol"), Key("dave")
	createGroup(t, s, g, 0, alice, bob, carol)
	c0, welcome := commitBytes("a", 0), []byte("welcome for dave")
	res, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), c0, welcome,
		accept(t, [][]byte{alice, bob, carol, dave}, [][]byte{bob, carol}, [][]byte{dave}))
	noErr(t, "SubmitCommit", err)
	if res != (store.CommitResult{Epoch: 0, GroupSeq: 1}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:0 GroupSeq:1}", res)
	}
	wantGroupState(t, s, g, dave, store.GroupState{Epoch: 1, LastSeq: 1, Members: 4})
	wantQueue(t, s, bob, alice, c0)
	wantQueue(t, s, carol, alice, c0)
	wantQueue(t, s, dave, alice, welcome)
	wantQueue(t, s, alice, nil)
	// The next commit sees the view the first one stored.
	c1 := commitBytes("d", 1)
	res, err = s.SubmitCommit(ctx, g, 1, dave, []byte("c1"), c1, nil, accept(t, [][]byte{alice, bob, carol, dave}, [][]byte{alice, bob, carol}, nil))
	noErr(t, "second SubmitCommit", err)
	if res != (store.CommitResult{Epoch: 1, GroupSeq: 2}) {
		t.Fatalf("second SubmitCommit = %+v", res)
	}
	wantQueue(t, s, alice, dave, c1)
	wantQueue(t, s, dave, alice, welcome)
}

func testGroupOneCommitPerEpoch(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("one per epoch")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	createGroup(t, s, g, 0, alice, bob, carol)
	roster := [][]byte{alice, bob, carol}
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), commitBytes("a", 0), nil, accept(t, roster, [][]byte{bob, carol}, nil))
	noErr(t, "SubmitCommit", err)
	called := false
	spy := func(store.GroupView) (store.CommitVerdict, error) {
		called = true
		return store.CommitVerdict{}, errRefused
	}
	for _, e := range []uint64{0, 5} {
		_, err = s.SubmitCommit(ctx, g, e, bob, []byte(fmt.Sprint("b", e)), commitBytes("b", e), nil, spy)
		wantStale(t, fmt.Sprintf("commit for epoch %d", e), err, e, 1)
	}
	if called {
		t.Fatal("the check ran for a stale commit")
	}
	wantQueue(t, s, alice, nil)
	wantGroupState(t, s, g, carol, store.GroupState{Epoch: 1, LastSeq: 1, Members: 3})
}

func testGroupRefusedCommit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("refused")
	alice, bob := Key("alice"), Key("bob")
	createGroup(t, s, g, 0, alice, bob)
	_, err := s.SubmitCommit(ctx, g, 0, bob, []byte("b0"), commitBytes("b", 0), []byte("w"), refuse)
	wantErr(t, "refused commit", err, errRefused)
	// A verdict the store cannot keep is refused too.
	bad := func(cur store.GroupView) (store.CommitVerdict, error) {
		return store.CommitVerdict{View: []byte("v"), Roster: [][]byte{alice, alice}}, nil
	}
	_, err = s.SubmitCommit(ctx, g, 0, bob, []byte("b1"), commitBytes("b", 1), nil, bad)
	wantErr(t, "verdict with a roster listing alice twice", err, store.ErrInvalid)
	noWelcome := accept(t, [][]byte{alice, bob}, [][]byte{alice}, nil)
	_, err = s.SubmitCommit(ctx, g, 0, bob, []byte("b2"), commitBytes("b", 2), []byte("w"), noWelcome)
	wantErr(t, "welcome without welcome recipients", err, store.ErrInvalid)
	wantQueue(t, s, alice, nil)
	wantGroupState(t, s, g, alice, store.GroupState{Epoch: 0, Members: 2})
	// The id was not used: the commit may come again and be accepted.
	_, err = s.SubmitCommit(ctx, g, 0, bob, []byte("b0"), commitBytes("b", 0), nil, accept(t, [][]byte{alice, bob}, [][]byte{alice}, nil))
	noErr(t, "SubmitCommit after a refusal", err)
	wantQueue(t, s, alice, bob, commitBytes("b", 0))
}

func testGroupResubmittedCommit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("resubmit")
	alice, bob := Key("alice"), Key("bob")
	createGroup(t, s, g, 0, alice, bob)
	roster := [][]byte{alice, bob}
	c0 := commitBytes("a", 0)
	first, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), c0, nil, accept(t, roster, [][]byte{bob}, nil))
	noErr(t, "SubmitCommit", err)
	_, err = s.SubmitCommit(ctx, g, 1, bob, []byte("b1"), commitBytes("b", 1), nil, accept(t, roster, [][]byte{alice}, nil))
	noErr(t, "SubmitCommit", err)
	// Even after the group moved on, and without running the check.
	again, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), c0, nil, refuse)
	noErr(t, "resubmitted SubmitCommit", err)
	if again != (store.CommitResult{Epoch: first.Epoch, GroupSeq: first.GroupSeq, Duplicate: true}) {
		t.Fatalf("resubmission = %+v, want the original %+v with Duplicate", again, first)
	}
	wantQueue(t, s, bob, alice, c0)
	wantGroupState(t, s, g, alice, store.GroupState{Epoch: 2, LastSeq: 2, Members: 2})
}

func testGroupReusedID(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("reuse")
	alice, bob := Key("alice"), Key("bob")
	createGroup(t, s, g, 0, alice, bob)
	roster := [][]byte{alice, bob}
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("x"), commitBytes("a", 0), nil, accept(t, roster, [][]byte{bob}, nil))
	noErr(t, "SubmitCommit", err)
	_, err = s.SubmitCommit(ctx, g, 1, alice, []byte("x"), commitBytes("a", 1), nil, accept(t, roster, [][]byte{bob}, nil))
	wantErr(t, "same id, other commit", err, store.ErrInvalid)
	_, err = s.FanOut(ctx, g, alice, []byte("x"), []byte("hello"), nil)
	wantErr(t, "same id for a message", err, store.ErrInvalid)
}

func testGroupFanOut(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fan out")
	alice, bob, carol, mallory := Key("alice"), Key("bob"), Key("carol"), Key("mallory")
	createGroup(t, s, g, 0, alice, bob, carol)
	for i := range 2 {
		fr, err := s.FanOut(ctx, g, alice, []byte(fmt.Sprint("m", i)), payload(i), nil)
		seq, dup := fr.GroupSeq, fr.Duplicate
		noErr(t, "FanOut", err)
		if seq != uint64(i+1) || dup {
			t.Fatalf("FanOut %d = (%d, %v)", i, seq, dup)
		}
	}
	fr, err := s.FanOut(ctx, g, alice, []byte("m1"), payload(1), nil)
	seq, dup := fr.GroupSeq, fr.Duplicate
	noErr(t, "resubmitted FanOut", err)
	if seq != 2 || !dup {
		t.Fatalf("resubmitted FanOut = (%d, %v), want (2, true)", seq, dup)
	}
	// The roster, not the sender, says who gets it: everyone but the sender.
	wantQueue(t, s, bob, alice, payload(0), payload(1))
	wantQueue(t, s, carol, alice, payload(0), payload(1))
	wantQueue(t, s, alice, nil)
	_, err = s.FanOut(ctx, g, mallory, []byte("spam"), []byte("spam"), nil)
	wantErr(t, "FanOut by a non-member", err, store.ErrNotMember)
	wantQueue(t, s, bob, alice, payload(0), payload(1))
	wantGroupState(t, s, g, bob, store.GroupState{Epoch: 0, LastSeq: 2, Members: 3})
}

func testGroupFanOutUpdate(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fan out view")
	alice, bob := Key("alice"), Key("bob")
	createGroup(t, s, g, 0, alice, bob)
	_, err := s.FanOut(ctx, g, bob, []byte("p"), []byte("bad proposal"), func(store.GroupView) ([]byte, error) { return nil, errRefused })
	wantErr(t, "refused proposal", err, errRefused)
	wantQueue(t, s, alice, nil)
	update := func(cur store.GroupView) ([]byte, error) {
		if cur.Epoch != 0 || !bytes.Equal(cur.View, viewAt(0)) {
			return nil, fmt.Errorf("update saw %q at %d", cur.View, cur.Epoch)
		}
		return []byte("view with a proposal"), nil
	}
	_, err = s.FanOut(ctx, g, bob, []byte("p"), []byte("proposal"), update)
	noErr(t, "FanOut with an update", err)
	wantQueue(t, s, alice, bob, []byte("proposal"))
	var seen []byte
	_, err = s.SubmitCommit(ctx, g, 0, alice, nil, commitBytes("a", 0), nil, func(cur store.GroupView) (store.CommitVerdict, error) {
		seen = cur.View
		return store.CommitVerdict{View: viewAt(1), Roster: [][]byte{alice, bob}, Recipients: [][]byte{bob}}, nil
	})
	noErr(t, "SubmitCommit", err)
	if string(seen) != "view with a proposal" {
		t.Fatalf("the commit's check saw view %q", seen)
	}
}

func testGroupRemovedMembers(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("removed")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	createGroup(t, s, g, 0, alice, bob, carol)
	// alice removes carol: carol receives the removal, then nothing.
	c0 := commitBytes("a", 0)
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), c0, nil, accept(t, [][]byte{alice, bob}, [][]byte{bob, carol}, nil))
	noErr(t, "SubmitCommit", err)
	_, err = s.FanOut(ctx, g, bob, []byte("m"), []byte("after"), nil)
	noErr(t, "FanOut", err)
	wantQueue(t, s, carol, alice, c0)
	wantQueue(t, s, alice, bob, []byte("after"))
	_, err = s.FanOut(ctx, g, carol, []byte("m"), []byte("still here?"), nil)
	wantErr(t, "FanOut by a removed member", err, store.ErrNotMember)
	_, err = s.SubmitCommit(ctx, g, 1, carol, []byte("c1"), commitBytes("c", 1), nil, accept(t, [][]byte{alice, bob, carol}, [][]byte{alice, bob}, nil))
	wantErr(t, "SubmitCommit by a removed member", err, store.ErrNotMember)
	_, err = s.GroupState(ctx, g, carol)
	wantErr(t, "GroupState for a removed member", err, store.ErrNotMember)
	// Rosters are per group.
	g2 := GroupID("removed 2")
	createGroup(t, s, g2, 0, carol, alice)
	_, err = s.FanOut(ctx, g2, carol, nil, []byte("other group"), nil)
	noErr(t, "FanOut in another group", err)
}

func testGroupFullQueue(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("full")
	alice, bob, carol, dave := Key("alice"), Key("bob"), Key("carol"), Key("dave")
	createGroup(t, s, g, 0, alice, bob, carol)
	enqueueN(t, s, carol, nil, 1, Limits().MaxQueueDepth, 1)
	roster := [][]byte{alice, bob, carol, dave}
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), []byte("w"), accept(t, roster, [][]byte{bob, carol}, [][]byte{dave}))
	wantErr(t, "SubmitCommit to a full queue", err, store.ErrLimit)
	_, err = s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), []byte("w"), accept(t, roster, [][]byte{bob}, [][]byte{dave, carol}))
	wantErr(t, "SubmitCommit with a welcome to a full queue", err, store.ErrLimit)
	_, err = s.FanOut(ctx, g, alice, []byte("m"), []byte("hi"), nil)
	wantErr(t, "FanOut to a full queue", err, store.ErrLimit)
	// Nobody got anything, the group did not move and the ids were not used.
	wantQueue(t, s, bob, nil)
	wantQueue(t, s, dave, nil)
	wantGroupState(t, s, g, alice, store.GroupState{Epoch: 0, Members: 3})
	_, err = s.Ack(ctx, carol, 1)
	noErr(t, "Ack", err)
	res, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), []byte("w"), accept(t, roster, [][]byte{bob, carol}, [][]byte{dave}))
	noErr(t, "SubmitCommit once there is room", err)
	if res != (store.CommitResult{Epoch: 0, GroupSeq: 1}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:0 GroupSeq:1}", res)
	}
	wantQueue(t, s, bob, alice, commitBytes("a", 0))
	wantQueue(t, s, dave, alice, []byte("w"))
}

func testGroupInvalid(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("invalid")
	alice, bob := Key("alice"), Key("bob")
	long := make([]byte, store.MaxGroupIDSize+1)
	c := commitBytes("a", 0)
	ok := accept(t, [][]byte{alice, bob}, [][]byte{bob}, nil)
	for name, call := range map[string]func() error{
		"CreateGroup with an empty group id": func() error { return s.CreateGroup(ctx, nil, alice, 0, viewAt(0), [][]byte{alice}) },
		"CreateGroup with a long group id":   func() error { return s.CreateGroup(ctx, long, alice, 0, viewAt(0), [][]byte{alice}) },
		"CreateGroup with a short creator":   func() error { return s.CreateGroup(ctx, g, alice[:31], 0, viewAt(0), [][]byte{alice[:31]}) },
		"CreateGroup without a view":         func() error { return s.CreateGroup(ctx, g, alice, 0, nil, [][]byte{alice}) },
		"CreateGroup without the creator":    func() error { return s.CreateGroup(ctx, g, alice, 0, viewAt(0), [][]byte{bob}) },
		"CreateGroup with a duplicate":       func() error { return s.CreateGroup(ctx, g, alice, 0, viewAt(0), [][]byte{alice, alice}) },
		"CreateGroup at the last epoch":      func() error { return s.CreateGroup(ctx, g, alice, math.MaxUint64, viewAt(0), [][]byte{alice}) },
		"SubmitCommit with an empty group id": func() error {
			_, err := s.SubmitCommit(ctx, nil, 0, alice, nil, c, nil, ok)
			return err
		},
		"SubmitCommit with a long group id": func() error {
			_, err := s.SubmitCommit(ctx, long, 0, alice, nil, c, nil, ok)
			return err
		},
		"SubmitCommit without sender": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, nil, nil, c, nil, ok)
			return err
		},
		"SubmitCommit with an empty commit": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, nil, nil, ok)
			return err
		},
		"SubmitCommit without a check": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, nil, nil)
			return err
		},
		"SubmitCommit at the last epoch": func() error {
			_, err := s.SubmitCommit(ctx, g, math.MaxUint64, alice, nil, c, nil, ok)
			return err
		},
		"SubmitCommit with a long client message id": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, make([]byte, 4096), c, nil, ok)
			return err
		},
		"FanOut with an empty group id": func() error {
			_, err := s.FanOut(ctx, nil, alice, nil, []byte("m"), nil)
			return err
		},
		"FanOut without sender": func() error {
			_, err := s.FanOut(ctx, g, nil, nil, []byte("m"), nil)
			return err
		},
		"FanOut with an empty payload": func() error {
			_, err := s.FanOut(ctx, g, alice, nil, nil, nil)
			return err
		},
		"GroupState with an empty group id": func() error {
			_, err := s.GroupState(ctx, nil, alice)
			return err
		},
		"GroupState with a short member": func() error {
			_, err := s.GroupState(ctx, g, alice[:3])
			return err
		},
	} {
		wantErr(t, name, call(), store.ErrInvalid)
	}
	_, err := s.GroupState(ctx, g, alice)
	wantErr(t, "GroupState after invalid calls", err, store.ErrNotMember)
	wantQueue(t, s, bob, nil)
}

// concurrentCommits has every member commit at epoch at once and checks
// that exactly one wins and every other gets a StaleEpochError naming
// epoch+1.
func concurrentCommits(t *testing.T, s store.Store, g []byte, epoch uint64, members [][]byte) {
	t.Helper()
	ctx := testCtx(t)
	n := len(members)
	results := make([]store.CommitResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			others := make([][]byte, 0, n-1)
			for j, m := range members {
				if j != i {
					others = append(others, m)
				}
			}
			results[i], errs[i] = s.SubmitCommit(ctx, g, epoch, members[i], []byte(fmt.Sprint("commit ", epoch)),
				commitBytes(fmt.Sprint(i), epoch), nil, accept(t, members, others, nil))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range n {
		if errs[i] == nil {
			if winner >= 0 {
				t.Fatalf("members %d and %d both won epoch %d", winner, i, epoch)
			}
			winner = i
			if results[i].Epoch != epoch || results[i].Duplicate {
				t.Fatalf("winning commit = %+v", results[i])
			}
			continue
		}
		wantStale(t, fmt.Sprintf("member %d", i), errs[i], epoch, epoch+1)
	}
	if winner < 0 {
		t.Fatalf("nobody won epoch %d", epoch)
	}
	// Everyone but the winner has exactly the winning commit for this epoch.
	for i, m := range members {
		got, err := s.Receive(ctx, m, 0, 1000)
		noErr(t, "Receive", err)
		want := commitBytes(fmt.Sprint(winner), epoch)
		var found int
		for _, msg := range got {
			if bytes.HasSuffix(msg.Payload, []byte(fmt.Sprintf("at epoch %d", epoch))) {
				found++
				if !bytes.Equal(msg.Payload, want) {
					t.Fatalf("member %d got %q, want the winner's %q", i, msg.Payload, want)
				}
			}
		}
		if wantN := map[bool]int{true: 0, false: 1}[i == winner]; found != wantN {
			t.Fatalf("member %d got %d commits for epoch %d, want %d", i, found, epoch, wantN)
		}
	}
}

func testGroupConcurrentCommits(t *testing.T, s store.Store) {
	g := GroupID("race")
	var members [][]byte
	for i := range 10 {
		members = append(members, Key(fmt.Sprint("member ", i)))
	}
	createGroup(t, s, g, 2, members...)
	for _, epoch := range []uint64{2, 3, 4} {
		concurrentCommits(t, s, g, epoch, members)
	}
	wantGroupState(t, s, g, members[3], store.GroupState{Epoch: 5, LastSeq: 3, Members: 10})
}

func testGroupConcurrentFanOut(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fan race")
	r := Key("reader")
	const n = 10
	roster := [][]byte{r}
	for i := range n {
		roster = append(roster, Key(fmt.Sprint("w", i)))
	}
	createGroup(t, s, g, 0, roster...)
	seqs := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fr store.FanOutResult
			fr, errs[i] = s.FanOut(ctx, g, roster[i+1], []byte("m"), payload(i), nil)
			seqs[i] = fr.GroupSeq
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i := range n {
		noErr(t, "concurrent FanOut", errs[i])
		if seqs[i] < 1 || seqs[i] > n || seen[seqs[i]] {
			t.Fatalf("concurrent FanOut gave group seqs %v, want 1..%d each once", seqs, n)
		}
		seen[seqs[i]] = true
	}
	got, err := s.Receive(ctx, r, 0, 100)
	noErr(t, "Receive", err)
	wantSeqs(t, got, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
}

func testGroupEnqueueNotSequenced(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	bob := Key("bob")
	_, _, err := s.Enqueue(ctx, bob, Key("alice"), []byte("direct"), []byte("direct"))
	noErr(t, "Enqueue", err)
	got, err := s.Receive(ctx, bob, 0, 10)
	noErr(t, "Receive", err)
	if len(got) != 1 || got[0].Sequenced || got[0].GroupSeq != 0 {
		t.Fatalf("an enqueued message reads as %+v, want one, not sequenced, without a group number", got)
	}
}

// testGroupSeqSameForEveryMember: every recipient's copy of a commit, its
// Welcome and a fanned-out message carries the number the store returned,
// whichever queue (and queue position) it lands in; a direct enqueue
// between them takes none.
func testGroupSeqSameForEveryMember(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("group seq")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	createGroup(t, s, g, 0, alice, bob)
	// Bob's queue position differs from carol's: he has a direct message first.
	_, _, err := s.Enqueue(ctx, bob, carol, nil, []byte("direct before"))
	noErr(t, "Enqueue", err)
	m1, err := s.FanOut(ctx, g, alice, nil, []byte("m1"), nil)
	noErr(t, "FanOut", err)
	c, err := s.SubmitCommit(ctx, g, 0, alice, nil, commitBytes("add carol", 0), []byte("welcome carol"),
		accept(t, [][]byte{alice, bob, carol}, [][]byte{bob}, [][]byte{carol}))
	noErr(t, "SubmitCommit", err)
	m2, err := s.FanOut(ctx, g, bob, nil, []byte("m2"), nil)
	noErr(t, "FanOut", err)
	_, _, err = s.Enqueue(ctx, carol, bob, nil, []byte("direct after"))
	noErr(t, "Enqueue", err)
	m3, err := s.FanOut(ctx, g, carol, nil, []byte("m3"), nil)
	noErr(t, "FanOut", err)
	if !(m1.GroupSeq < c.GroupSeq && c.GroupSeq < m2.GroupSeq && m2.GroupSeq < m3.GroupSeq) {
		t.Fatalf("group seqs %d, %d, %d, %d are not increasing", m1.GroupSeq, c.GroupSeq, m2.GroupSeq, m3.GroupSeq)
	}
	want := map[string]uint64{
		"direct before": 0, "direct after": 0,
		"m1": m1.GroupSeq, string(commitBytes("add carol", 0)): c.GroupSeq, "welcome carol": c.GroupSeq,
		"m2": m2.GroupSeq, "m3": m3.GroupSeq,
	}
	for _, tc := range []struct {
		who      []byte
		payloads []string
	}{
		{alice, []string{"m2", "m3"}},
		{bob, []string{"direct before", "m1", string(commitBytes("add carol", 0)), "m3"}},
		{carol, []string{"welcome carol", "m2", "direct after"}},
	} {
		got, err := s.Receive(ctx, tc.who, 0, 100)
		noErr(t, "Receive", err)
		if len(got) != len(tc.payloads) {
			t.Fatalf("queue of %x holds %d messages (%q), want %q", tc.who[:4], len(got), payloadList(got), tc.payloads)
		}
		for i, m := range got {
			w := want[tc.payloads[i]]
			if string(m.Payload) != tc.payloads[i] || m.GroupSeq != w || m.Sequenced != (w != 0) {
				t.Fatalf("queue of %x message %d = %q group seq %d (sequenced %v), want %q group seq %d",
					tc.who[:4], i, m.Payload, m.GroupSeq, m.Sequenced, tc.payloads[i], w)
			}
		}
	}
}

func testGroupClosed(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("closed")
	noErr(t, "Close", s.Close())
	err := s.CreateGroup(ctx, g, Key("a"), 0, viewAt(0), [][]byte{Key("a")})
	wantErr(t, "CreateGroup after Close", err, store.ErrClosed)
	_, err = s.SubmitCommit(ctx, g, 0, Key("a"), nil, []byte("c"), nil, refuse)
	wantErr(t, "SubmitCommit after Close", err, store.ErrClosed)
	_, err = s.FanOut(ctx, g, Key("a"), nil, []byte("m"), nil)
	wantErr(t, "FanOut after Close", err, store.ErrClosed)
	_, err = s.GroupState(ctx, g, Key("a"))
	wantErr(t, "GroupState after Close", err, store.ErrClosed)
}

func testGroupsReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := testCtx(t)
	g := GroupID("reopen")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	s := open(t)
	createGroup(t, s, g, 0, alice, bob, carol)
	first, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), nil, accept(t, [][]byte{alice, bob}, [][]byte{bob, carol}, nil))
	noErr(t, "SubmitCommit", err)
	_, err = s.FanOut(ctx, g, alice, []byte("m1"), payload(1), nil)
	noErr(t, "FanOut", err)
	noErr(t, "Close", s.Close())

	// The view, the epoch and the roster survive.
	s = open(t)
	defer s.Close()
	wantGroupState(t, s, g, bob, store.GroupState{Epoch: 1, LastSeq: 2, Members: 2})
	wantQueue(t, s, bob, alice, commitBytes("a", 0), payload(1))
	_, err = s.GroupState(ctx, g, carol)
	wantErr(t, "GroupState of the removed member after reopen", err, store.ErrNotMember)
	again, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), nil, refuse)
	noErr(t, "resubmitted SubmitCommit after reopen", err)
	if again != (store.CommitResult{Epoch: first.Epoch, GroupSeq: first.GroupSeq, Duplicate: true}) {
		t.Fatalf("resubmission after reopen = %+v", again)
	}
	_, err = s.SubmitCommit(ctx, g, 0, bob, []byte("b0"), commitBytes("b", 0), nil, refuse)
	wantStale(t, "stale SubmitCommit after reopen", err, 0, 1)
	_, err = s.SubmitCommit(ctx, g, 1, bob, []byte("b1"), commitBytes("b", 1), nil, accept(t, [][]byte{alice, bob}, [][]byte{alice}, nil))
	noErr(t, "SubmitCommit on the reopened view", err)
}

// Deliver returns a CommitCheck that accepts a commit on any view: the
// group moves to roster, the commit goes to recipients and the Welcome to
// welcomed. For backend tests that need a commit, not a view.
func Deliver(roster, recipients, welcomed [][]byte) store.CommitCheck {
	return func(cur store.GroupView) (store.CommitVerdict, error) {
		return store.CommitVerdict{View: viewAt(cur.Epoch + 1), Roster: roster, Recipients: recipients, WelcomeRecipients: welcomed}, nil
	}
}

// CreateGroup creates g at epoch 0 with roster (its first entry the creator).
func CreateGroup(t testing.TB, s store.Store, g []byte, roster ...[]byte) {
	t.Helper()
	if err := s.CreateGroup(context.Background(), g, roster[0], 0, viewAt(0), roster); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
}

// payloadList lists the payloads of msgs, for failure messages.
func payloadList(msgs []store.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}
