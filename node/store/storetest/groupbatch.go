package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
)

// batchItems returns n application messages of g with ids and payloads
// numbered from first.
func batchItems(g []byte, first, n int) []store.FanOutItem {
	items := make([]store.FanOutItem, n)
	for i := range items {
		items[i] = store.FanOutItem{GroupID: g, ClientMsgID: []byte(fmt.Sprint("b", first+i)), Payload: payload(first + i)}
	}
	return items
}

func wantBatchSeqs(t *testing.T, what string, got []store.FanOutResult, first uint64, dup bool) {
	t.Helper()
	for i, r := range got {
		if r.GroupSeq != first+uint64(i) || r.Duplicate != dup {
			t.Fatalf("%s: result %d = (%d, %v), want (%d, %v)", what, i, r.GroupSeq, r.Duplicate, first+uint64(i), dup)
		}
	}
}

// A batch is stored in order with consecutive group numbers; a replay is
// all duplicates; a refused message ends the batch, stores nothing itself,
// and keeps the messages before it; the rest are not tried.
func testGroupFanOutBatch(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fan out batch")
	alice, bob, mallory := Key("alice"), Key("bob"), Key("mallory")
	createGroup(t, s, g, 0, alice, bob)
	items := batchItems(g, 0, 5)
	res, err := s.FanOutBatch(ctx, alice, items)
	noErr(t, "FanOutBatch", err)
	if len(res) != 5 {
		t.Fatalf("FanOutBatch: %d results, want 5", len(res))
	}
	wantBatchSeqs(t, "FanOutBatch", res, 1, false)
	if !bytes.Equal(res[0].Recipients[0], bob) || len(res[0].Recipients) != 1 {
		t.Fatalf("FanOutBatch recipients %x, want bob", res[0].Recipients)
	}
	res, err = s.FanOutBatch(ctx, alice, items)
	noErr(t, "replayed FanOutBatch", err)
	if len(res) != 5 {
		t.Fatalf("replayed FanOutBatch: %d results, want 5", len(res))
	}
	wantBatchSeqs(t, "replayed FanOutBatch", res, 1, true)
	wantGroupState(t, s, g, bob, store.GroupState{Epoch: 0, LastSeq: 5, Members: 2})

	// A refused proposal in the middle: the two before it go, it and the
	// two after it do not.
	items = batchItems(g, 5, 5)
	items[2].Update = func(store.GroupView) ([]byte, error) { return nil, errRefused }
	res, err = s.FanOutBatch(ctx, alice, items)
	wantErr(t, "FanOutBatch with a refused message", err, errRefused)
	if len(res) != 2 {
		t.Fatalf("FanOutBatch with a refused message: %d results, want 2", len(res))
	}
	wantBatchSeqs(t, "FanOutBatch with a refused message", res, 6, false)
	want := [][]byte{payload(0), payload(1), payload(2), payload(3), payload(4), payload(5), payload(6)}
	wantQueue(t, s, bob, alice, want...)
	wantGroupState(t, s, g, bob, store.GroupState{Epoch: 0, LastSeq: 7, Members: 2})
	// Sent again without the refusal, the rest follows in order.
	items[2].Update = nil
	res, err = s.FanOutBatch(ctx, alice, items)
	noErr(t, "FanOutBatch again", err)
	for i, r := range res {
		if r.Duplicate != (i < 2) || r.GroupSeq != uint64(6+i) {
			t.Fatalf("FanOutBatch again: result %d = (%d, %v)", i, r.GroupSeq, r.Duplicate)
		}
	}
	wantQueue(t, s, bob, alice, append(want, payload(7), payload(8), payload(9))...)

	// A reused client message id with other bytes is refused like FanOut's.
	bad := batchItems(g, 10, 2)
	bad[1].ClientMsgID = []byte("b0")
	res, err = s.FanOutBatch(ctx, alice, bad)
	wantErr(t, "FanOutBatch reusing an id", err, store.ErrInvalid)
	if len(res) != 1 {
		t.Fatalf("FanOutBatch reusing an id: %d results, want 1", len(res))
	}

	// A non-member stores nothing.
	res, err = s.FanOutBatch(ctx, mallory, batchItems(g, 20, 3))
	wantErr(t, "FanOutBatch by a non-member", err, store.ErrNotMember)
	if len(res) != 0 {
		t.Fatalf("FanOutBatch by a non-member: %d results", len(res))
	}
	wantGroupState(t, s, g, bob, store.GroupState{Epoch: 0, LastSeq: 11, Members: 2})

	// Past the count limit: refused whole.
	res, err = s.FanOutBatch(ctx, alice, batchItems(g, 100, store.MaxFanOutBatch+1))
	wantErr(t, "FanOutBatch past the limit", err, store.ErrInvalid)
	if len(res) != 0 {
		t.Fatalf("FanOutBatch past the limit: %d results", len(res))
	}
	wantGroupState(t, s, g, bob, store.GroupState{Epoch: 0, LastSeq: 11, Members: 2})
}

// A message refused after some of its writes (a recipient's queue is full)
// leaves none of them behind: the group's number and the other queues are
// as after the messages before it.
func testGroupFanOutBatchFullQueue(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g := GroupID("fan out batch full")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	createGroup(t, s, g, 0, alice, bob, carol)
	enqueueN(t, s, carol, nil, 1, Limits().MaxQueueDepth-2, 1)
	items := batchItems(g, 0, 4)
	res, err := s.FanOutBatch(ctx, alice, items)
	wantErr(t, "FanOutBatch to a queue that fills", err, store.ErrLimit)
	if len(res) != 2 {
		t.Fatalf("FanOutBatch to a queue that fills: %d results, want 2", len(res))
	}
	wantBatchSeqs(t, "FanOutBatch to a queue that fills", res, 1, false)
	wantQueue(t, s, bob, alice, payload(0), payload(1))
	wantGroupState(t, s, g, alice, store.GroupState{Epoch: 0, LastSeq: 2, Members: 3})
	_, err = s.Ack(ctx, carol, uint64(Limits().MaxQueueDepth))
	noErr(t, "Ack", err)
	res, err = s.FanOutBatch(ctx, alice, items)
	noErr(t, "FanOutBatch once there is room", err)
	if len(res) != 4 || res[2].GroupSeq != 3 || res[2].Duplicate || res[3].GroupSeq != 4 {
		t.Fatalf("FanOutBatch once there is room = %+v", res)
	}
	wantQueue(t, s, bob, alice, payload(0), payload(1), payload(2), payload(3))
	// The refused message took no numbers: bob's run on without a gap.
	got, err := s.Receive(ctx, bob, 0, 10)
	noErr(t, "Receive", err)
	for i, m := range got {
		if m.Seq != uint64(i+1) {
			t.Fatalf("bob's queue after a refused batch message: %v, want 1 to %d", seqList(got), len(got))
		}
	}
}

// A batch mixing two groups' messages gives each to its own group's other
// members, in order, each group numbering its own: a roster read for one
// group (a store may keep it for the batch) never serves the other.
func testGroupFanOutBatchTwoGroups(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	g1, g2 := GroupID("fan out batch one"), GroupID("fan out batch two")
	alice, bob, carol := Key("alice"), Key("bob"), Key("carol")
	createGroup(t, s, g1, 0, alice, bob)
	createGroup(t, s, g2, 0, alice, carol)
	var items []store.FanOutItem
	var toBob, toCarol [][]byte
	for i := range 6 {
		g, to := g1, &toBob
		if i%3 == 1 {
			g, to = g2, &toCarol
		}
		items = append(items, store.FanOutItem{GroupID: g, ClientMsgID: []byte(fmt.Sprint("two", i)), Payload: payload(i)})
		*to = append(*to, payload(i))
	}
	res, err := s.FanOutBatch(ctx, alice, items)
	noErr(t, "FanOutBatch of two groups", err)
	if len(res) != len(items) {
		t.Fatalf("FanOutBatch of two groups: %d results, want %d", len(res), len(items))
	}
	seqs := map[string]uint64{}
	for i, r := range res {
		want := bob
		if i%3 == 1 {
			want = carol
		}
		seqs[string(items[i].GroupID)]++
		if len(r.Recipients) != 1 || !bytes.Equal(r.Recipients[0], want) || r.GroupSeq != seqs[string(items[i].GroupID)] {
			t.Fatalf("message %d: recipients %x, group number %d", i, r.Recipients, r.GroupSeq)
		}
	}
	wantQueue(t, s, bob, alice, toBob...)
	wantQueue(t, s, carol, alice, toCarol...)
}
