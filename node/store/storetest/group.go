package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
)

func runGroups(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Group/FirstCommit", testGroupFirstCommit},
		{"Group/FirstCommitAtAnyEpoch", testGroupFirstCommitAnyEpoch},
		{"Group/OneCommitPerEpoch", testGroupOneCommitPerEpoch},
		{"Group/StaleStoresNothing", testGroupStaleStoresNothing},
		{"Group/ResubmittedCommit", testGroupResubmittedCommit},
		{"Group/ReusedIDOtherContent", testGroupReusedID},
		{"Group/FanOut", testGroupFanOut},
		{"Group/FanOutBeforeFirstCommit", testGroupFanOutFirst},
		{"Group/FullQueueRefusesAll", testGroupFullQueue},
		{"Group/GroupsAreSeparate", testGroupsSeparate},
		{"Group/Invalid", testGroupInvalid},
		{"Group/ConcurrentCommits", testGroupConcurrentCommits},
		{"Group/ConcurrentFirstCommits", testGroupConcurrentFirstCommits},
		{"Group/ConcurrentFanOut", testGroupConcurrentFanOut},
		{"Group/Roster", testGroupRoster},
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

func wantGroupState(t *testing.T, s store.Store, g []byte, want store.GroupState) {
	t.Helper()
	got, err := s.GroupState(testCtx(t), g)
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

// wantQueue checks that recipient's queue holds exactly the given payloads, in order.
func wantQueue(t *testing.T, s store.Store, recipient []byte, sender []byte, payloads ...[]byte) {
	t.Helper()
	got, err := s.Receive(testCtx(t), recipient, 0, 1000)
	noErr(t, "Receive", err)
	if len(got) != len(payloads) {
		t.Fatalf("queue of %x holds %d messages, want %d", recipient[:4], len(got), len(payloads))
	}
	for i, m := range got {
		if !bytes.Equal(m.Payload, payloads[i]) || !bytes.Equal(m.Sender, sender) {
			t.Fatalf("queue of %x message %d = %q from %x, want %q from %x", recipient[:4], i, m.Payload, m.Sender, payloads[i], sender)
		}
		if i > 0 && m.Seq <= got[i-1].Seq {
			t.Fatalf("queue of %x out of order: %v", recipient[:4], seqList(got))
		}
	}
}

func testGroupFirstCommit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("first")
	alice, bob, carol, dave := Key("alice"), Key("bob"), Key("carol"), Key("dave")
	wantGroupState(t, s, g, store.GroupState{})
	c0, welcome := commitBytes("a", 0), []byte("welcome for dave")
	res, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), c0, [][]byte{bob, carol}, welcome, [][]byte{dave})
	noErr(t, "SubmitCommit", err)
	if res != (store.CommitResult{Epoch: 0, GroupSeq: 1}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:0 GroupSeq:1}", res)
	}
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 1})
	wantQueue(t, s, bob, alice, c0)
	wantQueue(t, s, carol, alice, c0)
	wantQueue(t, s, dave, alice, welcome)
	wantQueue(t, s, alice, nil)
	got, err := s.Receive(ctx, bob, 0, 10)
	noErr(t, "Receive", err)
	if !bytes.Equal(got[0].ClientMsgID, []byte("c0")) {
		t.Fatalf("fanned-out commit carries client message id %q, want %q", got[0].ClientMsgID, "c0")
	}
	// A commit without a welcome.
	c1 := commitBytes("b", 1)
	res, err = s.SubmitCommit(ctx, g, 1, bob, []byte("c1"), c1, [][]byte{alice, carol, dave}, nil, nil)
	noErr(t, "SubmitCommit at epoch 1", err)
	if res != (store.CommitResult{Epoch: 1, GroupSeq: 2}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:1 GroupSeq:2}", res)
	}
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 2, LastSeq: 2})
	gotDave, err := s.Receive(ctx, dave, 0, 10)
	noErr(t, "Receive", err)
	if len(gotDave) != 2 || !bytes.Equal(gotDave[0].Payload, welcome) || !bytes.Equal(gotDave[1].Payload, c1) ||
		!bytes.Equal(gotDave[1].Sender, bob) {
		t.Fatalf("dave's queue = %d messages, want the welcome then bob's commit", len(gotDave))
	}
}

func testGroupFirstCommitAnyEpoch(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("any")
	res, err := s.SubmitCommit(ctx, g, 7, Key("alice"), []byte("c7"), commitBytes("a", 7), [][]byte{Key("bob")}, nil, nil)
	noErr(t, "first SubmitCommit at epoch 7", err)
	if res.Epoch != 7 || res.Duplicate {
		t.Fatalf("SubmitCommit = %+v, want epoch 7", res)
	}
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 8, LastSeq: 1})
	_, err = s.SubmitCommit(ctx, g, 0, Key("bob"), []byte("c0"), commitBytes("b", 0), nil, nil, nil)
	wantStale(t, "SubmitCommit at epoch 0 after the group started at 7", err, 0, 8)
}

func testGroupOneCommitPerEpoch(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("one")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), commitBytes("a", 0), [][]byte{bob, carol}, nil, nil)
	noErr(t, "SubmitCommit", err)
	_, err = s.SubmitCommit(ctx, g, 1, bob, []byte("b1"), commitBytes("b", 1), [][]byte{alice, carol}, nil, nil)
	noErr(t, "SubmitCommit at 1", err)
	// Carol's commit for epoch 1 lost the race.
	_, err = s.SubmitCommit(ctx, g, 1, carol, []byte("c1"), commitBytes("c", 1), [][]byte{alice, bob}, nil, nil)
	wantStale(t, "second SubmitCommit at epoch 1", err, 1, 2)
	// So does one for an epoch that has not come yet, or long gone.
	_, err = s.SubmitCommit(ctx, g, 5, carol, []byte("c5"), commitBytes("c", 5), nil, nil, nil)
	wantStale(t, "SubmitCommit at a future epoch", err, 5, 2)
	_, err = s.SubmitCommit(ctx, g, 0, carol, []byte("c0"), commitBytes("c", 0), nil, nil, nil)
	wantStale(t, "SubmitCommit at a past epoch", err, 0, 2)
	// After applying the winner, carol commits at the current epoch.
	res, err := s.SubmitCommit(ctx, g, 2, carol, []byte("c2"), commitBytes("c", 2), [][]byte{alice, bob}, nil, nil)
	noErr(t, "SubmitCommit at 2", err)
	if res != (store.CommitResult{Epoch: 2, GroupSeq: 3}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:2 GroupSeq:3}", res)
	}
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 3, LastSeq: 3})
}

func testGroupStaleStoresNothing(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("stale")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	c0 := commitBytes("a", 0)
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), c0, [][]byte{bob}, nil, nil)
	noErr(t, "SubmitCommit", err)
	_, err = s.SubmitCommit(ctx, g, 0, bob, []byte("b0"), commitBytes("b", 0), [][]byte{alice}, []byte("welcome"), [][]byte{carol})
	wantStale(t, "losing SubmitCommit", err, 0, 1)
	wantQueue(t, s, alice, nil)
	wantQueue(t, s, carol, nil)
	wantQueue(t, s, bob, alice, c0)
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 1})
	// The refused id was not remembered: the same id at the right epoch is a new commit.
	res, err := s.SubmitCommit(ctx, g, 1, bob, []byte("b0"), commitBytes("b", 0), [][]byte{alice}, nil, nil)
	noErr(t, "SubmitCommit with the once refused id", err)
	if res.Duplicate || res.Epoch != 1 {
		t.Fatalf("SubmitCommit = %+v, want a new commit at epoch 1", res)
	}
}

func testGroupResubmittedCommit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("resubmit")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	c0, w0 := commitBytes("a", 0), []byte("welcome carol")
	first, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), c0, [][]byte{bob}, w0, [][]byte{carol})
	noErr(t, "SubmitCommit", err)
	again, err := s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), c0, [][]byte{bob}, w0, [][]byte{carol})
	noErr(t, "resubmitted SubmitCommit", err)
	if again != (store.CommitResult{Epoch: first.Epoch, GroupSeq: first.GroupSeq, Duplicate: true}) {
		t.Fatalf("resubmission = %+v, want %+v with Duplicate", again, first)
	}
	wantQueue(t, s, bob, alice, c0)
	wantQueue(t, s, carol, alice, w0)
	// Still the original answer after the group has moved on, not "stale".
	_, err = s.SubmitCommit(ctx, g, 1, bob, []byte("b1"), commitBytes("b", 1), [][]byte{alice, carol}, nil, nil)
	noErr(t, "SubmitCommit at 1", err)
	_, err = s.Ack(ctx, bob, 100)
	noErr(t, "Ack", err)
	again, err = s.SubmitCommit(ctx, g, 0, alice, []byte("a0"), c0, [][]byte{bob}, w0, [][]byte{carol})
	noErr(t, "resubmitted SubmitCommit after the group moved on", err)
	if again != (store.CommitResult{Epoch: first.Epoch, GroupSeq: first.GroupSeq, Duplicate: true}) {
		t.Fatalf("late resubmission = %+v, want %+v with Duplicate", again, first)
	}
	wantQueue(t, s, bob, nil)
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 2, LastSeq: 2})
	// Without a client message id there is nothing to recognise it by.
	_, err = s.SubmitCommit(ctx, g, 2, carol, nil, commitBytes("c", 2), [][]byte{alice}, nil, nil)
	noErr(t, "SubmitCommit without id", err)
	_, err = s.SubmitCommit(ctx, g, 2, carol, nil, commitBytes("c", 2), [][]byte{alice}, nil, nil)
	wantStale(t, "repeated SubmitCommit without id", err, 2, 3)
}

func testGroupReusedID(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("reuse")
	alice, bob := Key("alice"), Key("bob")
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("x"), commitBytes("a", 0), [][]byte{bob}, nil, nil)
	noErr(t, "SubmitCommit", err)
	_, err = s.SubmitCommit(ctx, g, 1, alice, []byte("x"), commitBytes("a", 1), [][]byte{bob}, nil, nil)
	wantErr(t, "SubmitCommit reusing an id for another commit", err, store.ErrInvalid)
	_, _, err = s.FanOut(ctx, g, alice, []byte("x"), commitBytes("a", 0), [][]byte{bob})
	wantErr(t, "FanOut reusing a commit's id", err, store.ErrInvalid)
	_, _, err = s.FanOut(ctx, g, alice, []byte("y"), []byte("hello"), [][]byte{bob})
	noErr(t, "FanOut", err)
	_, _, err = s.FanOut(ctx, g, alice, []byte("y"), []byte("hello again"), [][]byte{bob})
	wantErr(t, "FanOut reusing an id for other bytes", err, store.ErrInvalid)
	_, err = s.SubmitCommit(ctx, g, 1, alice, []byte("y"), commitBytes("a", 1), [][]byte{bob}, nil, nil)
	wantErr(t, "SubmitCommit reusing an application message's id", err, store.ErrInvalid)
	wantQueue(t, s, bob, alice, commitBytes("a", 0), []byte("hello"))
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 2})
	// Ids are per sender and per group.
	_, err = s.SubmitCommit(ctx, g, 1, bob, []byte("x"), commitBytes("b", 1), [][]byte{alice}, nil, nil)
	noErr(t, "SubmitCommit with another sender's id", err)
	_, err = s.SubmitCommit(ctx, GroupID("reuse 2"), 0, alice, []byte("x"), commitBytes("a", 1), [][]byte{bob}, nil, nil)
	noErr(t, "SubmitCommit with the id in another group", err)
}

func testGroupFanOut(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fanout")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	c0 := commitBytes("a", 0)
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), c0, [][]byte{bob, carol}, nil, nil)
	noErr(t, "SubmitCommit", err)
	for i := 1; i <= 3; i++ {
		seq, dup, err := s.FanOut(ctx, g, alice, []byte(fmt.Sprint("m", i)), payload(i), [][]byte{bob, carol})
		noErr(t, "FanOut", err)
		if seq != uint64(i+1) || dup {
			t.Fatalf("FanOut #%d = (group seq %d, duplicate %v), want (%d, false)", i, seq, dup, i+1)
		}
	}
	// Idempotent.
	seq, dup, err := s.FanOut(ctx, g, alice, []byte("m2"), payload(2), [][]byte{bob, carol})
	noErr(t, "repeated FanOut", err)
	if seq != 3 || !dup {
		t.Fatalf("repeated FanOut = (%d, %v), want (3, true)", seq, dup)
	}
	wantQueue(t, s, bob, alice, c0, payload(1), payload(2), payload(3))
	wantQueue(t, s, carol, alice, c0, payload(1), payload(2), payload(3))
	// After the ack too.
	_, err = s.Ack(ctx, bob, 100)
	noErr(t, "Ack", err)
	seq, dup, err = s.FanOut(ctx, g, alice, []byte("m1"), payload(1), [][]byte{bob, carol})
	noErr(t, "repeated FanOut after Ack", err)
	if seq != 2 || !dup {
		t.Fatalf("repeated FanOut after Ack = (%d, %v), want (2, true)", seq, dup)
	}
	wantQueue(t, s, bob, alice)
	// Application messages do not move the epoch; commits share the sequence.
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 4})
	res, err := s.SubmitCommit(ctx, g, 1, bob, []byte("c1"), commitBytes("b", 1), [][]byte{alice, carol}, nil, nil)
	noErr(t, "SubmitCommit", err)
	if res.GroupSeq != 5 {
		t.Fatalf("commit after 3 application messages has group seq %d, want 5", res.GroupSeq)
	}
	// A fan-out to nobody still takes a number; without an id it is never a duplicate.
	seq, _, err = s.FanOut(ctx, g, alice, nil, payload(9), nil)
	noErr(t, "FanOut to nobody", err)
	seq2, dup, err := s.FanOut(ctx, g, alice, nil, payload(9), nil)
	noErr(t, "FanOut to nobody", err)
	if seq != 6 || seq2 != 7 || dup {
		t.Fatalf("FanOut without ids = %d, %d (duplicate %v), want 6, 7", seq, seq2, dup)
	}
}

func testGroupFanOutFirst(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fanout first")
	seq, _, err := s.FanOut(ctx, g, Key("alice"), []byte("m"), []byte("early"), [][]byte{Key("bob")})
	noErr(t, "FanOut to an unknown group", err)
	if seq != 1 {
		t.Fatalf("FanOut group seq = %d, want 1", seq)
	}
	wantGroupState(t, s, g, store.GroupState{LastSeq: 1})
	// The epoch is still open: the first commit may name any.
	res, err := s.SubmitCommit(ctx, g, 3, Key("alice"), []byte("c"), commitBytes("a", 3), [][]byte{Key("bob")}, nil, nil)
	noErr(t, "first SubmitCommit after a FanOut", err)
	if res != (store.CommitResult{Epoch: 3, GroupSeq: 2}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:3 GroupSeq:2}", res)
	}
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 4, LastSeq: 2})
}

func testGroupFullQueue(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("full")
	alice, bob, carol, dave := Key("alice"), Key("bob"), Key("carol"), Key("dave")
	enqueueN(t, s, carol, nil, 1, Limits().MaxQueueDepth, 1)
	_, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), [][]byte{bob, carol}, []byte("w"), [][]byte{dave})
	wantErr(t, "SubmitCommit to a full queue", err, store.ErrLimit)
	_, err = s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), [][]byte{bob}, []byte("w"), [][]byte{dave, carol})
	wantErr(t, "SubmitCommit with a welcome to a full queue", err, store.ErrLimit)
	_, _, err = s.FanOut(ctx, g, alice, []byte("m"), []byte("hi"), [][]byte{bob, carol, dave})
	wantErr(t, "FanOut to a full queue", err, store.ErrLimit)
	// Nobody got anything, the group did not move and the ids were not used.
	wantQueue(t, s, bob, nil)
	wantQueue(t, s, dave, nil)
	wantGroupState(t, s, g, store.GroupState{})
	_, err = s.Ack(ctx, carol, 1)
	noErr(t, "Ack", err)
	res, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), [][]byte{bob, carol}, []byte("w"), [][]byte{dave})
	noErr(t, "SubmitCommit once there is room", err)
	if res != (store.CommitResult{Epoch: 0, GroupSeq: 1}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:0 GroupSeq:1}", res)
	}
	wantQueue(t, s, bob, alice, commitBytes("a", 0))
	wantQueue(t, s, dave, alice, []byte("w"))
}

func testGroupsSeparate(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g1, g2 := GroupID("sep 1"), GroupID("sep 2")
	alice, bob := Key("alice"), Key("bob")
	for e := range uint64(3) {
		_, err := s.SubmitCommit(ctx, g1, e, alice, nil, commitBytes("a", e), [][]byte{bob}, nil, nil)
		noErr(t, "SubmitCommit g1", err)
	}
	_, err := s.SubmitCommit(ctx, g2, 0, alice, nil, commitBytes("a", 0), [][]byte{bob}, nil, nil)
	noErr(t, "SubmitCommit g2", err)
	wantGroupState(t, s, g1, store.GroupState{Committed: true, Epoch: 3, LastSeq: 3})
	wantGroupState(t, s, g2, store.GroupState{Committed: true, Epoch: 1, LastSeq: 1})
	// Bob's queue interleaves both groups in arrival order, with his own seqs.
	got, err := s.Receive(ctx, bob, 0, 10)
	noErr(t, "Receive", err)
	wantSeqs(t, got, 1, 2, 3, 4)
}

func testGroupInvalid(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g, alice, bob := GroupID("invalid"), Key("alice"), Key("bob")
	c := commitBytes("a", 0)
	long := bytes.Repeat([]byte{1}, store.MaxGroupIDSize+1)
	for name, call := range map[string]func() error{
		"empty group id": func() error {
			_, err := s.SubmitCommit(ctx, nil, 0, alice, nil, c, [][]byte{bob}, nil, nil)
			return err
		},
		"long group id": func() error {
			_, err := s.SubmitCommit(ctx, long, 0, alice, nil, c, [][]byte{bob}, nil, nil)
			return err
		},
		"anonymous sender": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, nil, nil, c, [][]byte{bob}, nil, nil)
			return err
		},
		"short sender": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice[:31], nil, c, [][]byte{bob}, nil, nil)
			return err
		},
		"short recipient": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, [][]byte{bob, bob[:31]}, nil, nil)
			return err
		},
		"nil recipient": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, [][]byte{nil}, nil, nil)
			return err
		},
		"recipient twice": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, [][]byte{bob, bob}, nil, nil)
			return err
		},
		"welcome recipient twice": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, nil, []byte("w"), [][]byte{bob, bob})
			return err
		},
		"bad welcome recipient": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, nil, []byte("w"), [][]byte{make([]byte, 33)})
			return err
		},
		"welcome without recipients": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, [][]byte{bob}, []byte("w"), nil)
			return err
		},
		"welcome recipients without welcome": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, c, nil, nil, [][]byte{bob})
			return err
		},
		"empty commit": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, nil, nil, [][]byte{bob}, nil, nil)
			return err
		},
		"epoch out of range": func() error {
			_, err := s.SubmitCommit(ctx, g, math.MaxUint64, alice, nil, c, [][]byte{bob}, nil, nil)
			return err
		},
		"long client message id": func() error {
			_, err := s.SubmitCommit(ctx, g, 0, alice, make([]byte, 4096), c, [][]byte{bob}, nil, nil)
			return err
		},
		"fan out: empty group id": func() error {
			_, _, err := s.FanOut(ctx, nil, alice, nil, []byte("m"), [][]byte{bob})
			return err
		},
		"fan out: anonymous sender": func() error {
			_, _, err := s.FanOut(ctx, g, nil, nil, []byte("m"), [][]byte{bob})
			return err
		},
		"fan out: bad recipient": func() error {
			_, _, err := s.FanOut(ctx, g, alice, nil, []byte("m"), [][]byte{bob, {1, 2, 3}})
			return err
		},
		"fan out: recipient twice": func() error {
			_, _, err := s.FanOut(ctx, g, alice, nil, []byte("m"), [][]byte{bob, alice, bob})
			return err
		},
		"fan out: empty payload": func() error {
			_, _, err := s.FanOut(ctx, g, alice, nil, nil, [][]byte{bob})
			return err
		},
		"group state: empty group id": func() error {
			_, err := s.GroupState(ctx, nil)
			return err
		},
		"group state: long group id": func() error {
			_, err := s.GroupState(ctx, long)
			return err
		},
	} {
		wantErr(t, name, call(), store.ErrInvalid)
	}
	wantGroupState(t, s, g, store.GroupState{})
	wantQueue(t, s, bob, nil)
}

// concurrentCommits has n members commit at epoch at once and checks that
// exactly one wins and every other gets a StaleEpochError naming epoch+1.
func concurrentCommits(t *testing.T, s store.Store, g []byte, epoch uint64, n int) {
	t.Helper()
	ctx := testCtx(t)
	members := make([][]byte, n)
	for i := range members {
		members[i] = Key(fmt.Sprint("member ", i))
	}
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
				commitBytes(fmt.Sprint(i), epoch), others, nil, nil)
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
			if bytes.HasPrefix(msg.Payload, []byte("commit ")) && bytes.HasSuffix(msg.Payload, []byte(fmt.Sprintf("at epoch %d", epoch))) {
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
	ctx := testCtx(t)
	g := GroupID("race")
	// The creator commits alone, then adds the members that race.
	var members [][]byte
	for i := range 10 {
		members = append(members, Key(fmt.Sprint("member ", i)))
	}
	for e, add := range [][][]byte{nil, members} {
		_, err := s.SubmitCommit(ctx, g, uint64(e), Key("creator"), nil, []byte(fmt.Sprint("setup ", e)), add, nil, nil)
		noErr(t, "SubmitCommit", err)
	}
	for _, epoch := range []uint64{2, 3, 4} {
		concurrentCommits(t, s, g, epoch, 10)
	}
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 5, LastSeq: 5})
}

func testGroupConcurrentFirstCommits(t *testing.T, s store.Store) {
	g := GroupID("race first")
	concurrentCommits(t, s, g, 0, 10)
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 1})
}

func testGroupConcurrentFanOut(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fan race")
	r := Key("reader")
	const n = 10
	seqs := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seqs[i], _, errs[i] = s.FanOut(ctx, g, Key(fmt.Sprint("w", i)), []byte("m"), payload(i), [][]byte{r})
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

func testGroupRoster(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("roster")
	alice, bob, carol, mallory := Key("alice"), Key("bob"), Key("carol"), Key("mallory")
	// Before the first commit anyone may fan out, and the first commit
	// (from anyone) makes the roster: sender, recipients, welcome recipients.
	_, _, err := s.FanOut(ctx, g, mallory, nil, []byte("early"), [][]byte{bob})
	noErr(t, "FanOut before the first commit", err)
	c0 := commitBytes("a", 0)
	_, err = s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), c0, [][]byte{bob}, []byte("w"), [][]byte{carol})
	noErr(t, "first SubmitCommit", err)
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 2})

	// Outsiders are refused at the right epoch and at a wrong one (without
	// learning the current epoch), and nothing is stored or remembered.
	_, err = s.SubmitCommit(ctx, g, 1, mallory, []byte("m"), commitBytes("m", 1), [][]byte{bob}, nil, nil)
	wantErr(t, "SubmitCommit from a non-member", err, store.ErrNotMember)
	_, err = s.SubmitCommit(ctx, g, 7, mallory, []byte("m7"), commitBytes("m", 7), [][]byte{bob}, nil, nil)
	wantErr(t, "SubmitCommit from a non-member at a wrong epoch", err, store.ErrNotMember)
	if errors.Is(err, store.ErrStaleEpoch) {
		t.Fatalf("a non-member's commit at a wrong epoch is stale (%v): it learns the epoch", err)
	}
	_, _, err = s.FanOut(ctx, g, mallory, []byte("m"), []byte("spam"), [][]byte{bob})
	wantErr(t, "FanOut from a non-member", err, store.ErrNotMember)
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 2})
	got, err := s.Receive(ctx, bob, 0, 10)
	noErr(t, "Receive", err)
	if len(got) != 2 || !bytes.Equal(got[0].Payload, []byte("early")) || !bytes.Equal(got[1].Payload, c0) {
		t.Fatalf("bob's queue holds %d messages, want the early one and the first commit", len(got))
	}

	// A welcome recipient is a member: carol fans out, then commits
	// without bob, which takes bob off the roster.
	seq, _, err := s.FanOut(ctx, g, carol, []byte("hi"), []byte("hi"), [][]byte{alice, bob})
	noErr(t, "FanOut from a welcome recipient", err)
	if seq != 3 {
		t.Fatalf("FanOut group seq = %d, want 3", seq)
	}
	_, err = s.SubmitCommit(ctx, g, 1, carol, []byte("c1"), commitBytes("c", 1), [][]byte{alice}, nil, nil)
	noErr(t, "SubmitCommit from a welcome recipient", err)
	_, err = s.SubmitCommit(ctx, g, 2, bob, []byte("b2"), commitBytes("b", 2), [][]byte{alice}, nil, nil)
	wantErr(t, "SubmitCommit from a removed member", err, store.ErrNotMember)
	_, _, err = s.FanOut(ctx, g, bob, nil, []byte("still here?"), [][]byte{alice})
	wantErr(t, "FanOut from a removed member", err, store.ErrNotMember)
	// The original answer stays available to a resubmission from whoever
	// was a member then.
	res, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), c0, [][]byte{bob}, []byte("w"), [][]byte{carol})
	noErr(t, "resubmitted first commit", err)
	if res != (store.CommitResult{Epoch: 0, GroupSeq: 2, Duplicate: true}) {
		t.Fatalf("resubmitted first commit = %+v", res)
	}
	res, err = s.SubmitCommit(ctx, g, 2, alice, []byte("a2"), commitBytes("a", 2), [][]byte{carol}, nil, nil)
	noErr(t, "SubmitCommit from a remaining member", err)
	if res != (store.CommitResult{Epoch: 2, GroupSeq: 5}) {
		t.Fatalf("SubmitCommit = %+v, want {Epoch:2 GroupSeq:5}", res)
	}
	// Rosters are per group.
	_, err = s.SubmitCommit(ctx, GroupID("roster 2"), 0, mallory, nil, commitBytes("m", 0), [][]byte{bob}, nil, nil)
	noErr(t, "SubmitCommit to another group", err)
}

func testGroupClosed(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("closed")
	noErr(t, "Close", s.Close())
	_, err := s.SubmitCommit(ctx, g, 0, Key("a"), nil, []byte("c"), nil, nil, nil)
	wantErr(t, "SubmitCommit after Close", err, store.ErrClosed)
	_, _, err = s.FanOut(ctx, g, Key("a"), nil, []byte("m"), nil)
	wantErr(t, "FanOut after Close", err, store.ErrClosed)
	_, err = s.GroupState(ctx, g)
	wantErr(t, "GroupState after Close", err, store.ErrClosed)
}

func testGroupsReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := testCtx(t)
	g := GroupID("reopen")
	alice, bob := Key("alice"), Key("bob")
	s := open(t)
	first, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), [][]byte{bob}, nil, nil)
	noErr(t, "SubmitCommit", err)
	_, _, err = s.FanOut(ctx, g, alice, []byte("m1"), payload(1), [][]byte{bob})
	noErr(t, "FanOut", err)
	noErr(t, "Close", s.Close())

	s = open(t)
	defer s.Close()
	wantGroupState(t, s, g, store.GroupState{Committed: true, Epoch: 1, LastSeq: 2})
	wantQueue(t, s, bob, alice, commitBytes("a", 0), payload(1))
	again, err := s.SubmitCommit(ctx, g, 0, alice, []byte("c0"), commitBytes("a", 0), [][]byte{bob}, nil, nil)
	noErr(t, "resubmitted SubmitCommit after reopen", err)
	if again != (store.CommitResult{Epoch: first.Epoch, GroupSeq: first.GroupSeq, Duplicate: true}) {
		t.Fatalf("resubmission after reopen = %+v", again)
	}
	_, err = s.SubmitCommit(ctx, g, 0, bob, []byte("b0"), commitBytes("b", 0), [][]byte{alice}, nil, nil)
	wantStale(t, "stale SubmitCommit after reopen", err, 0, 1)
	seq, dup, err := s.FanOut(ctx, g, alice, []byte("m2"), payload(2), [][]byte{bob})
	noErr(t, "FanOut after reopen", err)
	if seq != 3 || dup {
		t.Fatalf("FanOut after reopen = (%d, %v), want (3, false)", seq, dup)
	}
}
