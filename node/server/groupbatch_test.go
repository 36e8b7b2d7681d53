package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// batchMsgs has m protect texts "<tag>0", "<tag>1", ... with client
// message ids of the same names.
func batchMsgs(t *testing.T, m *grouptest.Member, tag string, n int) []client.GroupMessage {
	t.Helper()
	out := make([]client.GroupMessage, n)
	for i := range out {
		text := fmt.Sprint(tag, i)
		msg, err := m.Group.Protect([]byte(text), nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = client.GroupMessage{ClientMsgID: []byte(text), Message: msg}
	}
	return out
}

// wantBatchResults checks that results number n messages from first on.
func wantBatchResults(t *testing.T, what string, results []client.FanOutResult, n int, first uint64, dup bool) {
	t.Helper()
	if len(results) != n {
		t.Fatalf("%s: %d results, want %d", what, len(results), n)
	}
	for i, r := range results {
		if r.GroupSeq != first+uint64(i) || r.Duplicate != dup {
			t.Fatalf("%s: result %d = %+v, want group seq %d, duplicate %v", what, i, r, first+uint64(i), dup)
		}
	}
}

// wantTexts has m read the next messages of its queue and checks their
// plaintexts and group numbers.
func wantTexts(t *testing.T, m *grouptest.Member, sender []byte, firstSeq uint64, texts ...string) {
	t.Helper()
	for i, want := range texts {
		e := m.NextEnvelope(t, want)
		if r := m.Apply(t, e.Payload); string(r.Plaintext) != want || e.GroupSeq != firstSeq+uint64(i) || !bytes.Equal(e.Sender, sender) {
			t.Fatalf("%x read %q (group seq %d), want %q (%d)", m.Pub[:4], r.Plaintext, e.GroupSeq, want, firstSeq+uint64(i))
		}
	}
	m.Empty(t)
}

// A batch is stored in order with consecutive group numbers, and every
// member reads it in that order; sent again it is all duplicates.
func TestFanOutBatchInOrder(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, carol := grpMember(t, n), grpMember(t, n), grpMember(t, n)
	grouptest.Form(t, alice, bob, carol)
	msgs := batchMsgs(t, alice, "m", 6)
	res, refused, err := alice.Conn.FanOutBatch(ctx, msgs)
	if err != nil || refused != nil {
		t.Fatalf("FanOutBatch: %v, %v", refused, err)
	}
	wantBatchResults(t, "FanOutBatch", res, 6, 2, false)
	for _, m := range []*grouptest.Member{bob, carol} {
		wantTexts(t, m, alice.Pub, 2, "m0", "m1", "m2", "m3", "m4", "m5")
	}
	res, refused, err = alice.Conn.FanOutBatch(ctx, msgs)
	if err != nil || refused != nil {
		t.Fatalf("replayed FanOutBatch: %v, %v", refused, err)
	}
	wantBatchResults(t, "replayed FanOutBatch", res, 6, 2, true)
	bob.Empty(t)
	if gs, err := bob.Conn.GroupState(ctx, alice.Group.GroupID()); err != nil || gs.LastSeq != 7 {
		t.Fatalf("GroupState after the replay = %+v, %v", gs, err)
	}
}

// The first refused message ends the batch: those before it are stored,
// it and those after it are not; its error is the one FanOut would give.
func TestFanOutBatchRefusedMessageEndsIt(t *testing.T) {
	const limit = 4096
	n := startTestNode(t, server.Config{MaxPayloadSize: limit}, store.Limits{})
	ctx := testCtx(t)
	alice, bob := grpMember(t, n), grpMember(t, n)
	g := grouptest.Form(t, alice, bob)
	for _, tc := range []struct {
		name string
		bad  []byte
		want error
	}{
		{"too large", bytes.Repeat([]byte{0}, limit+1), client.ErrTooLarge},
		{"a commit", grpPublic(g, 1, grpContentCommit, "commit"), client.ErrInvalidArgument},
		{"a private proposal", grpPrivate(g, 1, grpContentProposal, "proposal"), client.ErrInvalidCommit},
		{"garbage", []byte("not an MLSMessage"), client.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := bob.Conn.GroupState(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			msgs := batchMsgs(t, alice, tc.name, 4)
			msgs[2] = client.GroupMessage{ClientMsgID: []byte("bad"), Message: tc.bad}
			res, refused, err := alice.Conn.FanOutBatch(ctx, msgs)
			if err != nil {
				t.Fatal(err)
			}
			grpNodeErr(t, "the refused message", refused, tc.want)
			wantBatchResults(t, "FanOutBatch", res, 2, gs.LastSeq+1, false)
			wantTexts(t, bob, alice.Pub, gs.LastSeq+1, tc.name+"0", tc.name+"1")
			// The rest goes in a batch of its own, in order.
			res, refused, err = alice.Conn.FanOutBatch(ctx, msgs[3:])
			if err != nil || refused != nil {
				t.Fatalf("FanOutBatch of the rest: %v, %v", refused, err)
			}
			wantBatchResults(t, "FanOutBatch of the rest", res, 1, gs.LastSeq+3, false)
			wantTexts(t, bob, alice.Pub, gs.LastSeq+3, tc.name+"3")
		})
	}
}

// A batch past the count or byte limits is refused whole, storing nothing.
func TestFanOutBatchLimits(t *testing.T) {
	const limit = 8192
	n := startTestNode(t, server.Config{MaxPayloadSize: limit, RateLimit: 10000, RateBurst: 10000}, store.Limits{})
	ctx := testCtx(t)
	alice, bob := grpMember(t, n), grpMember(t, n)
	g := grouptest.Form(t, alice, bob)
	msgs := batchMsgs(t, alice, "m", 65)
	res, refused, err := alice.Conn.FanOutBatch(ctx, msgs)
	grpNodeErr(t, "a batch of 65", err, client.ErrLimit)
	if res != nil || refused != nil {
		t.Fatalf("a batch of 65: %v, %v", res, refused)
	}
	big := make([]client.GroupMessage, 3)
	for i := range big {
		big[i] = client.GroupMessage{Message: append(grpPrivate(g, 1, grpContentApplication, ""), bytes.Repeat([]byte{1}, limit-100)...)}
	}
	_, _, err = alice.Conn.FanOutBatch(ctx, big)
	grpNodeErr(t, "a batch of three times the message limit", err, client.ErrTooLarge)
	bob.Empty(t)
	if gs, err := bob.Conn.GroupState(ctx, g); err != nil || gs.LastSeq != 1 {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
	// At the limits it goes.
	res, refused, err = alice.Conn.FanOutBatch(ctx, msgs[:64])
	if err != nil || refused != nil {
		t.Fatalf("a batch of 64: %v, %v", refused, err)
	}
	wantBatchResults(t, "a batch of 64", res, 64, 2, false)
}

// A stranger's batch naming the group stores nothing, and so does one of
// a member that names a group it is not in after its own messages.
func TestFanOutBatchHostile(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, mallory := grpMember(t, n), grpMember(t, n), grpMember(t, n)
	g := grouptest.Form(t, alice, bob)
	other := grouptest.Form(t, mallory)
	forged := []client.GroupMessage{
		{ClientMsgID: []byte("f0"), Message: grpPrivate(g, 1, grpContentApplication, "spam 0")},
		{ClientMsgID: []byte("f1"), Message: grpPrivate(g, 1, grpContentApplication, "spam 1")},
	}
	res, refused, err := mallory.Conn.FanOutBatch(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	grpNodeErr(t, "a stranger's batch", refused, client.ErrUnauthorized)
	if len(res) != 0 {
		t.Fatalf("a stranger's batch: %d results", len(res))
	}
	alice.Empty(t)
	bob.Empty(t)
	// Bob's own message goes; the next one, into mallory's group, is refused.
	msgs := append(batchMsgs(t, bob, "b", 1), client.GroupMessage{Message: grpPrivate(other, 0, grpContentApplication, "in")})
	res, refused, err = bob.Conn.FanOutBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	grpNodeErr(t, "a message into another group", refused, client.ErrUnauthorized)
	wantBatchResults(t, "bob's batch", res, 1, 2, false)
	wantTexts(t, alice, bob.Pub, 2, "b0")
	mallory.Empty(t)
}

// A proposal in a batch is judged as fanOut judges it: one the view
// refuses ends the batch; a valid one is kept for a commit by reference,
// and the messages around it keep their order.
func TestFanOutBatchProposal(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, carol, mallory := grpMember(t, n), grpMember(t, n), grpMember(t, n), grpMember(t, n)
	grouptest.Form(t, alice, bob, carol)
	leave, err := carol.Group.ProposeRemove(carol.Group.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	forged := grouptest.Resign(t, leave, mallory.Signer.SignaturePriv, carol.Group.GroupContext(), nil)
	msgs := batchMsgs(t, carol, "c", 2)
	res, refused, err := carol.Conn.FanOutBatch(ctx, append(msgs[:1:1], client.GroupMessage{Message: forged}, msgs[1]))
	if err != nil {
		t.Fatal(err)
	}
	grpNodeErr(t, "a forged proposal in a batch", refused, client.ErrInvalidCommit)
	wantBatchResults(t, "a batch with a forged proposal", res, 1, 2, false)
	res, refused, err = carol.Conn.FanOutBatch(ctx, []client.GroupMessage{{ClientMsgID: []byte("leave"), Message: leave}, msgs[1]})
	if err != nil || refused != nil {
		t.Fatalf("a batch with the proposal: %v, %v", refused, err)
	}
	wantBatchResults(t, "a batch with the proposal", res, 2, 3, false)
	for _, m := range []*grouptest.Member{alice, bob} {
		if r := m.Apply(t, m.Next(t, "c0")); string(r.Plaintext) != "c0" {
			t.Fatalf("%x read %q, want c0", m.Pub[:4], r.Plaintext)
		}
		if e := m.NextEnvelope(t, "carol's proposal"); !e.Sequenced || e.GroupSeq != 3 || m.Apply(t, e.Payload).Kind != mls.KindProposal {
			t.Fatalf("%x: proposal not received", m.Pub[:4])
		}
		if r := m.Apply(t, m.Next(t, "c1")); string(r.Plaintext) != "c1" {
			t.Fatalf("%x read %q, want c1", m.Pub[:4], r.Plaintext)
		}
	}
	commit, err := alice.Group.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.Submit(t, commit)
	if r := carol.Apply(t, carol.Next(t, "her removal")); !r.SelfRemoved {
		t.Fatal("carol was not removed")
	}
}

// Each item of a batch is a request against the identity's rate limit:
// with a few tokens left, a batch of 20 stores as many items as there are
// tokens and refuses the next as rateLimited, so batching does not
// multiply what the limit lets through.
func TestFanOutBatchChargesEachItem(t *testing.T) {
	n := startTestNode(t, server.Config{RateLimit: 2, RateBurst: 200}, store.Limits{})
	ctx := testCtx(t)
	alice, bob := grpMember(t, n), grpMember(t, n)
	g := grouptest.Form(t, alice, bob)
	gs, err := alice.Conn.GroupState(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	msgs := batchMsgs(t, alice, "r", 20)
	// Spend alice's tokens, then let about two come back.
	for {
		_, err := alice.Conn.GroupState(ctx, g)
		if errors.Is(err, client.ErrRateLimited) {
			break
		}
		if err != nil {
			t.Fatalf("spending tokens: %v", err)
		}
	}
	time.Sleep(time.Second)
	res, refused, err := alice.Conn.FanOutBatch(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	grpNodeErr(t, "the items past the tokens", refused, client.ErrRateLimited)
	if len(res) == 0 || len(res) >= len(msgs) {
		t.Fatalf("a batch of %d with about 2 tokens left stored %d", len(msgs), len(res))
	}
	wantBatchResults(t, "the items within the tokens", res, len(res), gs.LastSeq+1, false)
	t.Logf("%d of %d items within the tokens", len(res), len(msgs))
}
