package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/internal/testnode"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// MLS header values (RFC 9420 §6) for the messages the group tests build.
const (
	grpContentApplication = 1
	grpContentProposal    = 2
	grpContentCommit      = 3
)

// grpPublic builds an MLSMessage carrying a PublicMessage from member leaf
// 0 with the given content type; tag makes the bytes distinct. Only the
// header is meaningful to the node.
func grpPublic(groupID []byte, epoch uint64, contentType byte, tag string) []byte {
	b := []byte{0, 1, 0, 1}
	b = tlsOpaque(b, groupID)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, 1, 0, 0, 0, 0) // sender: member, leaf 0
	b = tlsOpaque(b, nil)        // authenticated_data
	b = append(b, contentType)
	return append(b, tag...) // stands for the content, auth and membership tag
}

// grpPrivate builds an MLSMessage carrying a PrivateMessage.
func grpPrivate(groupID []byte, epoch uint64, contentType byte, tag string) []byte {
	b := []byte{0, 1, 0, 2}
	b = tlsOpaque(b, groupID)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, contentType)
	b = tlsOpaque(b, nil) // authenticated_data
	return append(b, tag...)
}

// grpWelcome builds an MLSMessage carrying a Welcome.
func grpWelcome(tag string) []byte {
	return append([]byte{0, 1, 0, 3, 0, 1}, tag...)
}

// grpKeys returns the public keys of ids.
func grpKeys(ids ...testIdentity) [][]byte {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = id.pub
	}
	return out
}

// grpWantQueue asserts that c's queue (identity id) holds exactly the given
// payloads, each sent by sender, in order, and returns the envelopes.
func grpWantQueue(t *testing.T, c *client.Client, id testIdentity, sender []byte, payloads ...[]byte) []client.Envelope {
	t.Helper()
	msgs, err := c.Receive(testCtx(t), id.pub, 0, 0)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs) != len(payloads) {
		t.Fatalf("queue of %x holds %d messages, want %d", id.pub[:4], len(msgs), len(payloads))
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Payload, payloads[i]) {
			t.Fatalf("queue of %x: message %d is %q, want %q", id.pub[:4], i, m.Payload, payloads[i])
		}
		if !bytes.Equal(m.Sender, sender) {
			t.Fatalf("queue of %x: message %d sender %x, want %x", id.pub[:4], i, m.Sender, sender)
		}
	}
	return msgs
}

// grpRequests reads qpnode_requests_total{method, result} from reg.
func grpRequests(t *testing.T, reg *prometheus.Registry, method, result string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "qpnode_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// grpMember is a real MLS member connected to n.
func grpMember(t *testing.T, n *testNode) *grouptest.Member {
	t.Helper()
	m := grouptest.NewMember(t)
	m.Conn = n.dial(t, m.Priv)
	return m
}

// grpNodeErr reports whether err is the node's refusal with sentinel want.
func grpNodeErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// A real group through the node: the roster is the tree's, commits and
// messages reach the members, a removed member receives its removal and
// then nothing, and only members learn the group's state.
func TestGroupCommitFanOutState(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, server.Config{Metrics: metrics}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, carol, mallory := grpMember(t, n), grpMember(t, n), grpMember(t, n), grpMember(t, n)
	g := alice.Create(t)
	if gs, err := alice.Conn.GroupState(ctx, g); err != nil || gs != (client.GroupState{Epoch: 0, Members: 1}) {
		t.Fatalf("GroupState after CreateGroup = %+v, %v", gs, err)
	}
	alice.Add(t, bob, carol)
	if gs, err := carol.Conn.GroupState(ctx, g); err != nil || gs != (client.GroupState{Epoch: 1, LastSeq: 1, Members: 3}) {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
	_, err = mallory.Conn.GroupState(ctx, g)
	grpNodeErr(t, "GroupState of a stranger", err, client.ErrUnauthorized)
	_, err = mallory.Conn.GroupState(ctx, []byte("no such group"))
	grpNodeErr(t, "GroupState of an unknown group", err, client.ErrUnauthorized)

	// An application message reaches every other member, in group order.
	app, err := bob.Group.Protect([]byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if seq, dup, err := bob.Conn.FanOut(ctx, []byte("m1"), app); err != nil || seq != 2 || dup {
		t.Fatalf("FanOut = %d, %v, %v", seq, dup, err)
	}
	for _, m := range []*grouptest.Member{alice, carol} {
		e := m.NextEnvelope(t, "bob's message")
		if r := m.Apply(t, e.Payload); string(r.Plaintext) != "hello" || !e.Sequenced || !bytes.Equal(e.Sender, bob.Pub) {
			t.Fatalf("%x read %q (sequenced %v)", m.Pub[:4], r.Plaintext, e.Sequenced)
		}
	}
	bob.Empty(t)

	// Carol updates; alice's commit for the same epoch comes too late.
	up, err := carol.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	late, err := alice.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := carol.Submit(t, up); res.Epoch != 2 || res.GroupSeq != 3 {
		t.Fatalf("carol's commit = %+v", res)
	}
	_, err = alice.Conn.SubmitCommit(ctx, client.CommitRequest{Message: late.Message})
	var se *client.StaleEpochError
	if !errors.As(err, &se) || se.Epoch != 1 || se.Current != 2 {
		t.Fatalf("late commit: %v, want stale naming epoch 1, current 2", err)
	}
	if err := alice.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*grouptest.Member{alice, bob} {
		if e := m.NextEnvelope(t, "carol's commit"); !e.Sequenced || m.Apply(t, e.Payload).Kind != mls.KindCommit {
			t.Fatalf("%x: carol's commit not applied", m.Pub[:4])
		}
	}
	if got := grpRequests(t, reg, "submitCommit", "staleEpoch"); got != 1 {
		t.Fatalf("submitCommit staleEpoch count = %v, want 1", got)
	}

	// Alice removes carol: carol receives the removal, then nothing more,
	// and the node no longer takes anything from her.
	rm, err := alice.Group.RemoveMembers([]mls.LeafIndex{carol.Group.OwnLeaf()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.Submit(t, rm)
	if r := carol.Apply(t, carol.Next(t, "her removal")); !r.SelfRemoved {
		t.Fatalf("carol's removal: %+v", r)
	}
	bob.Apply(t, bob.Next(t, "carol's removal"))
	app, err = alice.Group.Protect([]byte("without carol"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.Conn.FanOut(ctx, nil, app); err != nil {
		t.Fatal(err)
	}
	bob.Apply(t, bob.Next(t, "the message after carol's removal"))
	carol.Empty(t)
	_, _, err = carol.Conn.FanOut(ctx, nil, grpPrivate(g, 3, grpContentApplication, "still here?"))
	grpNodeErr(t, "FanOut by the removed member", err, client.ErrUnauthorized)
	_, err = carol.Conn.GroupState(ctx, g)
	grpNodeErr(t, "GroupState for the removed member", err, client.ErrUnauthorized)
	if gs, err := bob.Conn.GroupState(ctx, g); err != nil || gs.Members != 2 || gs.Epoch != 3 {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
}

// A group id is claimed once, by a GroupInfo its claimer signed.
func TestGroupCreateClaims(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice, mallory := grpMember(t, n), grpMember(t, n)
	alice.Create(t)
	gi, err := alice.Group.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	grpNodeErr(t, "claim of a taken id", mallory.Conn.CreateGroup(ctx, gi), client.ErrUnauthorized)
	grpNodeErr(t, "second claim by the creator", alice.Conn.CreateGroup(ctx, gi), client.ErrGroupExists)
	// Mallory cannot register a group alice made but did not register.
	other, err := mls.CreateGroup(grouptest.Suite, nil, alice.Signer, &mls.CreateOptions{Config: grouptest.Config})
	if err != nil {
		t.Fatal(err)
	}
	gi2, _ := other.GroupInfo()
	grpNodeErr(t, "claim with someone else's GroupInfo", mallory.Conn.CreateGroup(ctx, gi2), client.ErrUnauthorized)
	bad := bytes.Clone(gi2)
	bad[len(bad)-1] ^= 1
	grpNodeErr(t, "claim with a bad signature", alice.Conn.CreateGroup(ctx, bad), client.ErrInvalidArgument)
	grpNodeErr(t, "claim with garbage", alice.Conn.CreateGroup(ctx, []byte("garbage")), client.ErrInvalidArgument)
	if err := alice.Conn.CreateGroup(ctx, gi2); err != nil {
		t.Fatalf("alice's own claim: %v", err)
	}
	checkServing(t, n)
}

// Every commit a member could forge is refused with a typed error, and the
// group goes on afterwards: the node follows the group's public state.
func TestGroupRefusesForgedCommits(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, carol, mallory := grpMember(t, n), grpMember(t, n), grpMember(t, n), grpMember(t, n)
	g := grouptest.Form(t, alice, bob, carol)
	epoch := alice.Group.Epoch()
	submit := func(m *grouptest.Member, msg []byte) error {
		_, err := m.Conn.SubmitCommit(ctx, client.CommitRequest{Message: msg})
		return err
	}
	// A real commit of bob's, to forge from.
	up, err := bob.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	gc := bob.Group.GroupContext()
	carolLeaf := carol.Group.OwnLeaf()
	for _, tc := range []struct {
		name string
		by   *grouptest.Member
		msg  []byte
		want error
	}{
		{"garbage after a commit header", alice, grpPublic(g, epoch, grpContentCommit, "garbage"), client.ErrInvalidCommit},
		{"a commit as a PrivateMessage", alice, grpPrivate(g, epoch, grpContentCommit, "hidden"), client.ErrInvalidCommit},
		{"bob's commit re-signed by a non-member's key", bob, grouptest.Resign(t, up.Message, mallory.Signer.SignaturePriv, gc, nil), client.ErrInvalidCommit},
		{"bob's commit submitted by alice", alice, up.Message, client.ErrUnauthorized},
		{"bob's commit submitted by a stranger", mallory, up.Message, client.ErrUnauthorized},
		{"a commit with an invalid proposal", bob, grouptest.Resign(t, up.Message, bob.Signer.SignaturePriv, gc, func(fc *mls.FramedContent) {
			fc.Commit.Proposals = append(fc.Commit.Proposals, mls.ProposalOrRef{Type: mls.ProposalOrRefProposal,
				Proposal: &mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.RemoveProposal{Removed: 9}}})
		}), client.ErrInvalidCommit},
		{"a commit removing the committer", bob, grouptest.Resign(t, up.Message, bob.Signer.SignaturePriv, gc, func(fc *mls.FramedContent) {
			fc.Commit.Proposals = append(fc.Commit.Proposals, mls.ProposalOrRef{Type: mls.ProposalOrRefProposal,
				Proposal: &mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.RemoveProposal{Removed: bob.Group.OwnLeaf()}}})
		}), client.ErrInvalidCommit},
		{"a commit with a broken path", bob, grouptest.Resign(t, up.Message, bob.Signer.SignaturePriv, gc, func(fc *mls.FramedContent) {
			fc.Commit.Path.Nodes[0].EncryptionKey = bytes.Clone(fc.Commit.Path.Nodes[0].EncryptionKey)
			fc.Commit.Path.Nodes[0].EncryptionKey[0] ^= 1
		}), client.ErrInvalidCommit},
		{"a commit for a future epoch", bob, grouptest.Resign(t, up.Message, bob.Signer.SignaturePriv, gc, func(fc *mls.FramedContent) {
			fc.Epoch += 3
		}), client.ErrFutureEpoch},
	} {
		grpNodeErr(t, tc.name, submit(tc.by, tc.msg), tc.want)
	}
	for _, m := range []*grouptest.Member{alice, bob, carol} {
		m.Empty(t)
	}
	if err := bob.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}

	// Alice removes carol; carol, just removed, signs a commit for the new
	// epoch from her old leaf: her own connection is refused, and through
	// a member's the signature has no leaf.
	rm, err := alice.Group.RemoveMembers([]mls.LeafIndex{carolLeaf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.Submit(t, rm)
	bob.Apply(t, bob.Next(t, "carol's removal"))
	carol.Apply(t, carol.Next(t, "her removal"))
	up2, err := bob.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	fromCarol := grouptest.Resign(t, up2.Message, carol.Signer.SignaturePriv, bob.Group.GroupContext(), func(fc *mls.FramedContent) {
		fc.Sender = mls.MemberSender(carolLeaf)
	})
	grpNodeErr(t, "the removed member's commit", submit(carol, fromCarol), client.ErrUnauthorized)
	grpNodeErr(t, "the removed member's commit through a member", submit(bob, fromCarol), client.ErrInvalidCommit)
	if err := bob.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}

	// The group keeps working: bob adds dave, dave updates, all talk.
	dave := grpMember(t, n)
	bob.Add(t, dave)
	alice.Apply(t, alice.Next(t, "dave's addition"))
	up3, err := dave.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	dave.Submit(t, up3)
	for _, m := range []*grouptest.Member{alice, bob} {
		m.Apply(t, m.Next(t, "dave's update"))
	}
	if !bytes.Equal(alice.Group.EpochAuthenticator(), dave.Group.EpochAuthenticator()) {
		t.Fatal("alice and dave disagree")
	}
	carol.Empty(t)
}

// A proposal goes through fanOut as a PublicMessage the node checks and
// keeps, so that a commit may cover it by reference.
func TestGroupProposalByReference(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, carol, mallory := grpMember(t, n), grpMember(t, n), grpMember(t, n), grpMember(t, n)
	grouptest.Form(t, alice, bob, carol)
	leave, err := carol.Group.ProposeRemove(carol.Group.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	gc := carol.Group.GroupContext()
	_, _, err = carol.Conn.FanOut(ctx, nil, grouptest.Resign(t, leave, mallory.Signer.SignaturePriv, gc, nil))
	grpNodeErr(t, "a proposal signed by another key", err, client.ErrInvalidCommit)
	_, _, err = bob.Conn.FanOut(ctx, nil, leave)
	grpNodeErr(t, "carol's proposal sent by bob", err, client.ErrUnauthorized)
	if _, _, err := carol.Conn.FanOut(ctx, []byte("leave"), leave); err != nil {
		t.Fatalf("FanOut of the proposal: %v", err)
	}
	for _, m := range []*grouptest.Member{alice, bob} {
		if e := m.NextEnvelope(t, "carol's proposal"); !e.Sequenced || m.Apply(t, e.Payload).Kind != mls.KindProposal {
			t.Fatalf("%x: proposal not received", m.Pub[:4])
		}
	}
	res, err := alice.Group.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.Submit(t, res)
	bob.Apply(t, bob.Next(t, "the commit"))
	if r := carol.Apply(t, carol.Next(t, "her removal")); !r.SelfRemoved {
		t.Fatal("carol was not removed")
	}
}

// A commit accepted through one node is the view every node on the same
// PostgreSQL database checks against, and a node restart keeps it.
func TestGroupViewSharedAndDurable(t *testing.T) {
	conn := pgtest.NewDatabase(t)
	a, b := startPostgresNode(t, conn), startPostgresNode(t, conn)
	ctx := testCtx(t)
	alice, bob := grouptest.NewMember(t), grouptest.NewMember(t)
	alice.Conn, bob.Conn = a.dial(t, alice.Priv), b.dial(t, bob.Priv)
	g := grouptest.Form(t, alice, bob)
	// Both build a commit for epoch 1 and submit it at the same time,
	// through different nodes: exactly one wins, the other is stale, and
	// the loser applies the winner's commit.
	ua, _ := alice.Group.SelfUpdate(nil)
	ub, _ := bob.Group.SelfUpdate(nil)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, sub := range []struct {
		m   *grouptest.Member
		msg []byte
	}{{alice, ua.Message}, {bob, ub.Message}} {
		wg.Go(func() { _, errs[i] = sub.m.Conn.SubmitCommit(ctx, client.CommitRequest{Message: sub.msg}) })
	}
	wg.Wait()
	winner, loser := alice, bob
	if errs[0] != nil {
		winner, loser = bob, alice
		grpNodeErr(t, "the loser of the concurrent commits", errs[0], client.ErrStaleEpoch)
	} else {
		grpNodeErr(t, "the loser of the concurrent commits", errs[1], client.ErrStaleEpoch)
	}
	if _, err := winner.Group.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if err := loser.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	loser.Apply(t, loser.Next(t, "the winner's commit"))
	// A third node, started after all this, knows the view.
	c := startPostgresNode(t, conn)
	carol := grouptest.NewMember(t)
	carol.Conn = c.dial(t, carol.Priv)
	alice.Conn = c.dial(t, alice.Priv)
	alice.Add(t, carol)
	bob.Apply(t, bob.Next(t, "carol's addition"))
	if gs, err := carol.Conn.GroupState(ctx, g); err != nil || gs.Epoch != 3 || gs.Members != 3 {
		t.Fatalf("GroupState through the new node = %+v, %v", gs, err)
	}
}

// Several members fan out at once: group sequence numbers are distinct,
// strictly increasing for each sender, and every member's queue holds the
// messages addressed to it in group sequence order, pushed by Subscribe.
func TestGroupFanOutOrder(t *testing.T) {
	n := startTestNode(t, server.Config{RateLimit: 10000, RateBurst: 10000}, store.Limits{})
	ctx := testCtx(t)
	const members, each = 5, 40
	ids := make([]testIdentity, members)
	conns := make([]*client.Client, members)
	ms := make([]*grouptest.Member, members)
	for i := range ids {
		ms[i] = grpMember(t, n)
		ids[i] = testIdentity{ms[i].Pub, ms[i].Priv}
		conns[i] = ms[i].Conn
	}
	g := grouptest.Form(t, ms...)
	// Every member subscribes before the messages flow.
	got := make([]chan []byte, members)
	for i := range ids {
		got[i] = make(chan []byte, members*each+1)
		sub, err := conns[i].Subscribe(ctx, ids[i].pub, 0, func(ctx context.Context, batch []client.Envelope) error {
			for _, e := range batch {
				got[i] <- e.Payload
			}
			_, err := conns[i].Ack(ctx, ids[i].pub, batch[len(batch)-1].Seq)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Cancel(context.Background()) })
	}
	type sent struct {
		seq     uint64
		sender  int
		payload []byte
	}
	sents := make([][]sent, members)
	errs := make([]error, members)
	var wg sync.WaitGroup
	for i := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				p := grpPrivate(g, 1, grpContentApplication, fmt.Sprintf("from %d #%d", i, k))
				seq, dup, err := conns[i].FanOut(ctx, []byte(fmt.Sprint("m", k)), p)
				if err != nil || dup {
					errs[i] = fmt.Errorf("member %d message %d: dup %v, %w", i, k, dup, err)
					return
				}
				sents[i] = append(sents[i], sent{seq, i, p})
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The group order: commit 1, then every message by its group seq.
	var order []sent
	for i := range members {
		for k := 1; k < len(sents[i]); k++ {
			if sents[i][k].seq <= sents[i][k-1].seq {
				t.Fatalf("member %d: group seq %d after %d", i, sents[i][k].seq, sents[i][k-1].seq)
			}
		}
		order = append(order, sents[i]...)
	}
	slices.SortFunc(order, func(a, b sent) int { return cmp.Compare(a.seq, b.seq) })
	for k, s := range order {
		if s.seq != uint64(k+2) {
			t.Fatalf("group seqs are not 2..%d: position %d has %d", members*each+1, k, s.seq)
		}
	}
	for i := range members {
		var want [][]byte
		for _, s := range order {
			if s.sender != i {
				want = append(want, s.payload)
			}
		}
		for k, w := range want {
			select {
			case p := <-got[i]:
				if !bytes.Equal(p, w) {
					t.Fatalf("member %d: message %d is %q, want %q (group order)", i, k, p, w)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("member %d: message %d never pushed", i, k)
			}
		}
		select {
		case p := <-got[i]:
			t.Fatalf("member %d: unexpected message %q", i, p)
		default:
		}
	}
	gs, err := conns[1].GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{Epoch: 1, LastSeq: members*each + 1, Members: members}) {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
}

// Bad group calls get typed errors, store nothing, and leave the node
// serving.
func TestGroupBadInput(t *testing.T) {
	const maxRecipients, maxPayload = 8, 8192
	n := startTestNode(t, server.Config{MaxRecipients: maxRecipients, MaxPayloadSize: maxPayload}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, mallory := grpMember(t, n), grpMember(t, n), grpMember(t, n)
	g := grouptest.Form(t, alice, bob)
	ca, cm := alice.Conn, mallory.Conn
	anon := n.dial(t, nil)
	commit := func(tag string) []byte { return grpPublic(g, 1, grpContentCommit, tag) }
	app := grpPrivate(g, 1, grpContentApplication, "app")
	garbage := bytes.Repeat([]byte{0xff, 0x17}, 100)
	// A real commit adding more members than the node delivers to at once.
	var kps []*mls.KeyPackage
	for range maxRecipients {
		kp, _, err := mls.GenerateKeyPackage(grouptest.Suite, grouptest.NewMember(t).Signer, nil)
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, kp)
	}
	many, err := alice.Group.AddMembers(kps, &mls.CommitOptions{OmitRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	up, err := alice.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"commit: garbage", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: garbage})
			return err
		}, client.ErrInvalidArgument},
		{"commit: empty message", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{})
			return err
		}, client.ErrInvalidArgument},
		{"commit: truncated header", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x")[:10]})
			return err
		}, client.ErrInvalidArgument},
		{"commit: a Welcome as the commit", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: grpWelcome("w")})
			return err
		}, client.ErrInvalidArgument},
		{"commit: application content", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: app})
			return err
		}, client.ErrInvalidArgument},
		{"commit: proposal content", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: grpPublic(g, 1, grpContentProposal, "p")})
			return err
		}, client.ErrInvalidArgument},
		{"commit: too many recipients", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: many.Message, Welcome: many.Welcome})
			return err
		}, client.ErrLimit},
		{"commit: adds without a welcome", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: many.Message})
			return err
		}, client.ErrInvalidArgument},
		{"commit: garbage welcome", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: up.Message, Welcome: garbage})
			return err
		}, client.ErrInvalidArgument},
		{"commit: a welcome for a commit that adds nobody", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: up.Message, Welcome: grpWelcome("w")})
			return err
		}, client.ErrInvalidArgument},
		{"commit: too large", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit(string(make([]byte, maxPayload)))})
			return err
		}, client.ErrTooLarge},
		{"commit: welcome too large", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: up.Message, Welcome: grpWelcome(string(make([]byte, maxPayload)))})
			return err
		}, client.ErrTooLarge},
		{"commit: long client message id", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{ClientMsgID: make([]byte, 65), Message: up.Message})
			return err
		}, client.ErrInvalidArgument},
		{"commit: anonymous", func() error {
			_, err := anon.SubmitCommit(ctx, client.CommitRequest{Message: up.Message})
			return err
		}, client.ErrUnauthorized},
		{"commit: a stranger", func() error {
			_, err := cm.SubmitCommit(ctx, client.CommitRequest{Message: commit("mallory")})
			return err
		}, client.ErrUnauthorized},
		{"commit: a stranger at a stale epoch", func() error {
			_, err := cm.SubmitCommit(ctx, client.CommitRequest{Message: grpPublic(g, 0, grpContentCommit, "mallory")})
			return err
		}, client.ErrUnauthorized},
		{"fan out: garbage", func() error {
			_, _, err := ca.FanOut(ctx, nil, garbage)
			return err
		}, client.ErrInvalidArgument},
		{"fan out: commit content", func() error {
			_, _, err := ca.FanOut(ctx, nil, up.Message)
			return err
		}, client.ErrInvalidArgument},
		{"fan out: application in a PublicMessage", func() error {
			_, _, err := ca.FanOut(ctx, nil, grpPublic(g, 1, grpContentApplication, "clear"))
			return err
		}, client.ErrInvalidArgument},
		{"fan out: a proposal as a PrivateMessage", func() error {
			_, _, err := ca.FanOut(ctx, nil, grpPrivate(g, 1, grpContentProposal, "hidden"))
			return err
		}, client.ErrInvalidCommit},
		{"fan out: a garbage proposal", func() error {
			_, _, err := ca.FanOut(ctx, nil, grpPublic(g, 1, grpContentProposal, "garbage"))
			return err
		}, client.ErrInvalidCommit},
		{"fan out: too large", func() error {
			_, _, err := ca.FanOut(ctx, nil, grpPrivate(g, 1, grpContentApplication, string(make([]byte, maxPayload))))
			return err
		}, client.ErrTooLarge},
		{"fan out: anonymous", func() error {
			_, _, err := anon.FanOut(ctx, nil, app)
			return err
		}, client.ErrUnauthorized},
		{"fan out: a stranger", func() error {
			_, _, err := cm.FanOut(ctx, nil, app)
			return err
		}, client.ErrUnauthorized},
		{"group state: empty id", func() error {
			_, err := ca.GroupState(ctx, nil)
			return err
		}, client.ErrInvalidArgument},
		{"group state: long id", func() error {
			_, err := ca.GroupState(ctx, make([]byte, 256))
			return err
		}, client.ErrInvalidArgument},
		{"group state: anonymous", func() error {
			_, err := anon.GroupState(ctx, g)
			return err
		}, client.ErrUnauthorized},
		{"create: too large", func() error {
			return ca.CreateGroup(ctx, make([]byte, maxPayload+1))
		}, client.ErrTooLarge},
		{"create: anonymous", func() error {
			gi, _ := alice.Group.GroupInfo()
			return anon.CreateGroup(ctx, gi)
		}, client.ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), tc.want)
		})
	}
	// Nothing was stored: the group is where it was and works.
	if gs, err := ca.GroupState(ctx, g); err != nil || gs != (client.GroupState{Epoch: 1, LastSeq: 1, Members: 2}) {
		t.Fatalf("GroupState after refused calls = %+v, %v", gs, err)
	}
	bob.Empty(t)
	if _, _, err := bob.Conn.FanOut(ctx, nil, app); err != nil {
		t.Fatalf("fan out from a member: %v", err)
	}
	checkServing(t, n)
}

// A node restarted on its state keeps every group's view: the next commit
// is checked against it, and a stale one is still stale.
func TestGroupViewSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := testnode.StartNode(t, dir, "127.0.0.1:0")
	ctx := testCtx(t)
	dial := func(n *testnode.Node, m *grouptest.Member) {
		t.Helper()
		c, err := client.Dial(ctx, n.Addr, client.Config{Identity: m.Priv, PinnedCert: n.CertDER, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Register(ctx, ""); err != nil {
			t.Fatal(err)
		}
		m.Conn = c
	}
	alice, bob, mallory := grouptest.NewMember(t), grouptest.NewMember(t), grouptest.NewMember(t)
	dial(n, alice)
	dial(n, bob)
	g := grouptest.Form(t, alice, bob)
	late, err := alice.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	up, err := bob.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	bob.Submit(t, up)
	n.Stop()

	n = testnode.StartNode(t, dir, "127.0.0.1:0")
	for _, m := range []*grouptest.Member{alice, bob, mallory} {
		dial(n, m)
	}
	_, err = alice.Conn.SubmitCommit(ctx, client.CommitRequest{Message: late.Message})
	grpNodeErr(t, "the stale commit after the restart", err, client.ErrStaleEpoch)
	if err := alice.Group.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	alice.Apply(t, alice.Next(t, "bob's commit, kept across the restart"))
	_, err = mallory.Conn.GroupState(ctx, g)
	grpNodeErr(t, "a stranger's GroupState after the restart", err, client.ErrUnauthorized)
	up2, err := alice.Group.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := grouptest.Resign(t, up2.Message, mallory.Signer.SignaturePriv, alice.Group.GroupContext(), nil)
	_, err = alice.Conn.SubmitCommit(ctx, client.CommitRequest{Message: forged})
	grpNodeErr(t, "a forged commit after the restart", err, client.ErrInvalidCommit)
	alice.Submit(t, up2)
	bob.Apply(t, bob.Next(t, "alice's commit after the restart"))
	if gs, err := bob.Conn.GroupState(ctx, g); err != nil || gs.Epoch != 3 || gs.Members != 2 {
		t.Fatalf("GroupState after the restart = %+v, %v", gs, err)
	}
}
