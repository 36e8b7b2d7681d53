package server_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

func TestGroupCommitFanOutState(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, server.Config{Metrics: metrics}, store.Limits{})
	alice, bob, carol := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	ca, cb, cc := n.dial(t, alice.priv), n.dial(t, bob.priv), n.dial(t, carol.priv)
	ctx := testCtx(t)
	g := []byte("group-commit-fan")

	gs, err := ca.GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{}) {
		t.Fatalf("GroupState of a new group = %+v, %v; want zero", gs, err)
	}
	c0 := grpPublic(g, 0, grpContentCommit, "add bob and carol")
	w0 := grpWelcome("welcome bob and carol")
	res, err := ca.SubmitCommit(ctx, client.CommitRequest{
		ClientMsgID: []byte("c0"), Message: c0,
		Welcome: w0, WelcomeRecipients: grpKeys(bob, carol),
	})
	if err != nil {
		t.Fatalf("SubmitCommit: %v", err)
	}
	if res != (client.CommitResult{Epoch: 1, GroupSeq: 1}) {
		t.Fatalf("SubmitCommit = %+v, want epoch 1, seq 1", res)
	}
	grpWantQueue(t, cb, bob, alice.pub, w0)
	grpWantQueue(t, cc, carol, alice.pub, w0)

	app := grpPrivate(g, 1, grpContentApplication, "hello")
	seq, dup, err := cb.FanOut(ctx, []byte("m1"), app, grpKeys(alice, carol))
	if err != nil || seq != 2 || dup {
		t.Fatalf("FanOut = %d, %v, %v; want 2, false, nil", seq, dup, err)
	}
	grpWantQueue(t, ca, alice, bob.pub, app)

	c1 := grpPrivate(g, 1, grpContentCommit, "carol updates")
	res, err = cc.SubmitCommit(ctx, client.CommitRequest{ClientMsgID: []byte("c1"), Message: c1, Recipients: grpKeys(alice, bob)})
	if err != nil || res != (client.CommitResult{Epoch: 2, GroupSeq: 3}) {
		t.Fatalf("SubmitCommit at epoch 1 = %+v, %v; want epoch 2, seq 3", res, err)
	}
	_, err = ca.SubmitCommit(ctx, client.CommitRequest{Message: grpPublic(g, 1, grpContentCommit, "late"), Recipients: grpKeys(bob, carol)})
	var se *client.StaleEpochError
	if !errors.Is(err, client.ErrStaleEpoch) || !errors.As(err, &se) || se.Epoch != 1 || se.Current != 2 {
		t.Fatalf("late commit: err = %v, want a stale epoch error naming epoch 1, current 2", err)
	}
	if got := grpRequests(t, reg, "submitCommit", "staleEpoch"); got != 1 {
		t.Fatalf("submitCommit staleEpoch count = %v, want 1", got)
	}
	if got := grpRequests(t, reg, "submitCommit", "ok"); got != 2 {
		t.Fatalf("submitCommit ok count = %v, want 2", got)
	}
	gs, err = cb.GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{Committed: true, Epoch: 2, LastSeq: 3}) {
		t.Fatalf("GroupState = %+v, %v; want committed at epoch 2, last seq 3", gs, err)
	}
	msgs, err := ca.Receive(ctx, alice.pub, 0, 0)
	if err != nil || len(msgs) != 2 || !bytes.Equal(msgs[1].Payload, c1) || !bytes.Equal(msgs[1].Sender, carol.pub) ||
		string(msgs[1].ClientMsgID) != "c1" {
		t.Fatalf("alice's queue: %v %+v; want the application message, then carol's commit", err, msgs)
	}
}

// grpHookStore is the node's real store with a function run after each
// accepted, non-duplicate commit and before the node replies.
type grpHookStore struct {
	store.Store
	afterCommit func()
}

func (s *grpHookStore) SubmitCommit(ctx context.Context, groupID []byte, epoch uint64, sender, clientMsgID, commit []byte,
	recipients [][]byte, welcome []byte, welcomeRecipients [][]byte) (store.CommitResult, error) {
	res, err := s.Store.SubmitCommit(ctx, groupID, epoch, sender, clientMsgID, commit, recipients, welcome, welcomeRecipients)
	if err == nil && !res.Duplicate && s.afterCommit != nil {
		s.afterCommit()
	}
	return res, err
}

// grpStartHookNode starts a node like startTestNode whose store is a
// grpHookStore over a SQLite store in a temp dir.
func grpStartHookNode(t *testing.T, cfg server.Config, hook *grpHookStore) *testNode {
	t.Helper()
	return startWrappedNode(t, cfg, store.Limits{}, func(st store.Store) store.Store {
		hook.Store = st
		return hook
	})
}

// Two members commit at the same epoch at once, over several epochs: each
// time exactly one is accepted, the other gets ErrStaleEpoch naming the new
// epoch, the winner's commit reaches its recipients and its Welcome only its
// welcome recipients, and the loser's messages reach nobody.
func TestGroupConcurrentCommitsOneWins(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, carol := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	ca, cb, cc := n.dial(t, alice.priv), n.dial(t, bob.priv), n.dial(t, carol.priv)
	g := []byte("group-race-0123")
	if _, err := ca.SubmitCommit(ctx, client.CommitRequest{
		ClientMsgID: []byte("create"), Message: grpPublic(g, 0, grpContentCommit, "create"),
		Welcome: grpWelcome("join"), WelcomeRecipients: grpKeys(bob, carol),
	}); err != nil {
		t.Fatalf("create: %v", err)
	}
	cursors := map[string]uint64{}
	// next returns the messages of id's queue after its cursor.
	next := func(c *client.Client, id testIdentity) []client.Envelope {
		t.Helper()
		msgs, err := c.Receive(ctx, id.pub, cursors[string(id.pub)], 0)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(msgs) > 0 {
			cursors[string(id.pub)] = msgs[len(msgs)-1].Seq
		}
		return msgs
	}
	next(cb, bob)
	next(cc, carol)
	wins := map[string]int{}
	for epoch := uint64(1); epoch <= 12; epoch++ {
		type racer struct {
			name    string
			c       *client.Client
			id      testIdentity
			others  []testIdentity
			joiner  testIdentity
			jc      *client.Client
			commit  []byte
			welcome []byte
			res     client.CommitResult
			err     error
		}
		racers := []*racer{
			{name: "bob", c: cb, id: bob, others: []testIdentity{alice, carol}},
			{name: "carol", c: cc, id: carol, others: []testIdentity{alice, bob}},
		}
		for _, r := range racers {
			r.joiner = newTestIdentity(t)
			r.jc = n.dial(t, r.joiner.priv)
			r.commit = grpPrivate(g, epoch, grpContentCommit, fmt.Sprintf("%s at %d", r.name, epoch))
			r.welcome = grpWelcome(fmt.Sprintf("%s's welcome at %d", r.name, epoch))
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, r := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r.res, r.err = r.c.SubmitCommit(ctx, client.CommitRequest{
					ClientMsgID: []byte(fmt.Sprint("commit ", epoch)), Message: r.commit,
					Recipients: grpKeys(r.others...), Welcome: r.welcome, WelcomeRecipients: grpKeys(r.joiner),
				})
			}()
		}
		close(start)
		wg.Wait()
		var win, lose *racer
		for _, r := range racers {
			if r.err == nil {
				if win != nil {
					t.Fatalf("epoch %d: both commits accepted", epoch)
				}
				win = r
				continue
			}
			var se *client.StaleEpochError
			if !errors.Is(r.err, client.ErrStaleEpoch) || !errors.As(r.err, &se) || se.Epoch != epoch || se.Current != epoch+1 {
				t.Fatalf("epoch %d: %s: err = %v, want stale naming epoch %d, current %d", epoch, r.name, r.err, epoch, epoch+1)
			}
			lose = r
		}
		if win == nil || lose == nil {
			t.Fatalf("epoch %d: want one winner and one loser", epoch)
		}
		wins[win.name]++
		if win.res.Epoch != epoch+1 || win.res.Duplicate {
			t.Fatalf("epoch %d: winner's result %+v", epoch, win.res)
		}
		// Alice and the loser each got exactly the winner's commit.
		for _, who := range []struct {
			c  *client.Client
			id testIdentity
		}{{ca, alice}, {lose.c, lose.id}} {
			msgs := next(who.c, who.id)
			if len(msgs) != 1 || !bytes.Equal(msgs[0].Payload, win.commit) || !bytes.Equal(msgs[0].Sender, win.id.pub) {
				t.Fatalf("epoch %d: %x got %d messages, want the winner's commit", epoch, who.id.pub[:4], len(msgs))
			}
		}
		if msgs := next(win.c, win.id); len(msgs) != 0 {
			t.Fatalf("epoch %d: the winner got %d messages", epoch, len(msgs))
		}
		grpWantQueue(t, win.jc, win.joiner, win.id.pub, win.welcome)
		grpWantQueue(t, lose.jc, lose.joiner, nil)
		gs, err := ca.GroupState(ctx, g)
		if err != nil || !gs.Committed || gs.Epoch != epoch+1 {
			t.Fatalf("epoch %d: GroupState = %+v, %v", epoch, gs, err)
		}
	}
	t.Logf("wins: %v", wins)
}

// The node commits, then the connection dies before the reply arrives. The
// client resubmits with the same ClientMsgID on a new connection and gets
// the original result marked Duplicate; recipients see the commit once.
func TestGroupCommitReplyLost(t *testing.T) {
	alice, bob, carol := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	// The hook closes the first connection after the first commit is stored.
	var (
		firstConn atomic.Pointer[client.Client]
		once      sync.Once
		hooked    = make(chan struct{})
	)
	hook := &grpHookStore{afterCommit: func() {
		once.Do(func() {
			close(hooked)
			c := firstConn.Load()
			c.Close()
			<-c.Done()
		})
	}}
	n := grpStartHookNode(t, server.Config{}, hook)
	ctx := testCtx(t)
	g := []byte("group-reply-lost")
	commit := grpPublic(g, 0, grpContentCommit, "create")
	welcome := grpWelcome("join")
	req := client.CommitRequest{
		ClientMsgID: []byte("create-1"), Message: commit,
		Recipients: grpKeys(bob), Welcome: welcome, WelcomeRecipients: grpKeys(carol),
	}

	first := n.dial(t, alice.priv)
	firstConn.Store(first)
	_, err := first.SubmitCommit(ctx, req)
	if err == nil {
		t.Fatal("SubmitCommit on a connection closed before the reply succeeded")
	}
	if errors.Is(err, client.ErrStaleEpoch) {
		t.Fatalf("lost reply reported as stale: %v", err)
	}
	select {
	case <-hooked:
	default:
		t.Fatalf("the node never committed: %v", err)
	}
	t.Logf("first attempt: %v", err)

	var res client.CommitResult
	for attempt := 0; ; attempt++ {
		c := n.dial(t, alice.priv)
		res, err = c.SubmitCommit(ctx, req)
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("resubmission: %v", err)
		}
	}
	if res != (client.CommitResult{Epoch: 1, GroupSeq: 1, Duplicate: true}) {
		t.Fatalf("resubmission = %+v, want the original {Epoch:1 GroupSeq:1} as a duplicate", res)
	}
	grpWantQueue(t, n.dial(t, bob.priv), bob, alice.pub, commit)
	grpWantQueue(t, n.dial(t, carol.priv), carol, alice.pub, welcome)
	// The same id for other bytes is refused; the group is where it was.
	c := n.dial(t, alice.priv)
	other := req
	other.Message = grpPublic(g, 0, grpContentCommit, "other")
	if _, err := c.SubmitCommit(ctx, other); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("id reused for another commit: err = %v, want ErrInvalidArgument", err)
	}
	gs, err := c.GroupState(ctx, g)
	if err != nil || gs != (client.GroupState{Committed: true, Epoch: 1, LastSeq: 1}) {
		t.Fatalf("GroupState = %+v, %v", gs, err)
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
	for i := range ids {
		ids[i] = newTestIdentity(t)
		conns[i] = n.dial(t, ids[i].priv)
	}
	g := []byte("group-order")
	creation := grpPublic(g, 0, grpContentCommit, "create")
	if _, err := conns[0].SubmitCommit(ctx, client.CommitRequest{Message: creation, Recipients: grpKeys(ids[1:]...)}); err != nil {
		t.Fatal(err)
	}
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
			others := make([]testIdentity, 0, members-1)
			for j, id := range ids {
				if j != i {
					others = append(others, id)
				}
			}
			for k := range each {
				ct := byte(grpContentApplication)
				if k%5 == 4 {
					ct = grpContentProposal
				}
				p := grpPrivate(g, 1, ct, fmt.Sprintf("from %d #%d", i, k))
				seq, dup, err := conns[i].FanOut(ctx, []byte(fmt.Sprint("m", k)), p, grpKeys(others...))
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
		if i != 0 {
			want = append(want, creation)
		}
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
	if err != nil || gs != (client.GroupState{Committed: true, Epoch: 1, LastSeq: members*each + 1}) {
		t.Fatalf("GroupState = %+v, %v", gs, err)
	}
}

// Bad group calls get typed errors, store nothing, and leave the node
// serving.
func TestGroupBadInput(t *testing.T) {
	const maxRecipients, maxPayload = 8, 4096
	n := startTestNode(t, server.Config{MaxRecipients: maxRecipients, MaxPayloadSize: maxPayload}, store.Limits{})
	ctx := testCtx(t)
	alice, bob, mallory := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	ca, cm := n.dial(t, alice.priv), n.dial(t, mallory.priv)
	anon := n.dial(t, nil)
	g := []byte("group-bad-input")
	commit := func(tag string) []byte { return grpPrivate(g, 0, grpContentCommit, tag) }
	app := grpPrivate(g, 0, grpContentApplication, "app")
	many := func(k int) [][]byte {
		out := make([][]byte, k)
		for i := range out {
			out[i] = newTestIdentity(t).pub
		}
		return out
	}
	garbage := make([]byte, 200)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	garbage[0] = 0xff
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"commit: garbage", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: garbage, Recipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: empty message", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Recipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: truncated header", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x")[:10], Recipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: a Welcome as the commit", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: grpWelcome("w"), Recipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: application content", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: app, Recipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: proposal content", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: grpPublic(g, 0, grpContentProposal, "p"), Recipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: too many recipients", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), Recipients: many(maxRecipients + 1)})
			return err
		}, client.ErrLimit},
		{"commit: too many with welcome recipients", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), Recipients: many(5),
				Welcome: grpWelcome("w"), WelcomeRecipients: many(4)})
			return err
		}, client.ErrLimit},
		{"commit: short recipient key", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), Recipients: [][]byte{bob.pub[:31]}})
			return err
		}, client.ErrInvalidArgument},
		{"commit: recipient twice", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), Recipients: grpKeys(bob, bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: garbage welcome", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), Welcome: garbage, WelcomeRecipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: welcome without recipients", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), Welcome: grpWelcome("w")})
			return err
		}, client.ErrInvalidArgument},
		{"commit: welcome recipients without a welcome", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), WelcomeRecipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: too large", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit(string(make([]byte, maxPayload))), Recipients: grpKeys(bob)})
			return err
		}, client.ErrTooLarge},
		{"commit: welcome too large", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"),
				Welcome: grpWelcome(string(make([]byte, maxPayload))), WelcomeRecipients: grpKeys(bob)})
			return err
		}, client.ErrTooLarge},
		{"commit: long client message id", func() error {
			_, err := ca.SubmitCommit(ctx, client.CommitRequest{ClientMsgID: make([]byte, 65), Message: commit("x"), Recipients: grpKeys(bob)})
			return err
		}, client.ErrInvalidArgument},
		{"commit: anonymous", func() error {
			_, err := anon.SubmitCommit(ctx, client.CommitRequest{Message: commit("x"), Recipients: grpKeys(bob)})
			return err
		}, client.ErrUnauthorized},
		{"fan out: garbage", func() error {
			_, _, err := ca.FanOut(ctx, nil, garbage, grpKeys(bob))
			return err
		}, client.ErrInvalidArgument},
		{"fan out: commit content", func() error {
			_, _, err := ca.FanOut(ctx, nil, commit("x"), grpKeys(bob))
			return err
		}, client.ErrInvalidArgument},
		{"fan out: application in a PublicMessage", func() error {
			_, _, err := ca.FanOut(ctx, nil, grpPublic(g, 0, grpContentApplication, "clear"), grpKeys(bob))
			return err
		}, client.ErrInvalidArgument},
		{"fan out: too many recipients", func() error {
			_, _, err := ca.FanOut(ctx, nil, app, many(maxRecipients+1))
			return err
		}, client.ErrLimit},
		{"fan out: too large", func() error {
			_, _, err := ca.FanOut(ctx, nil, grpPrivate(g, 0, grpContentApplication, string(make([]byte, maxPayload))), grpKeys(bob))
			return err
		}, client.ErrTooLarge},
		{"fan out: anonymous", func() error {
			_, _, err := anon.FanOut(ctx, nil, app, grpKeys(bob))
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), tc.want)
		})
	}
	// Nothing was stored.
	if gs, err := ca.GroupState(ctx, g); err != nil || gs != (client.GroupState{}) {
		t.Fatalf("GroupState after refused calls = %+v, %v", gs, err)
	}
	cb := n.dial(t, bob.priv)
	grpWantQueue(t, cb, bob, nil)

	// Once alice's commit makes the roster {alice, bob}, mallory may not
	// commit or fan out, at the right epoch or a wrong one.
	if _, err := ca.SubmitCommit(ctx, client.CommitRequest{Message: commit("create"), Recipients: grpKeys(bob)}); err != nil {
		t.Fatal(err)
	}
	_, err := cm.SubmitCommit(ctx, client.CommitRequest{Message: grpPrivate(g, 1, grpContentCommit, "mallory"), Recipients: grpKeys(alice, bob)})
	wantErr(t, "commit from a non-member", err, client.ErrUnauthorized)
	_, err = cm.SubmitCommit(ctx, client.CommitRequest{Message: grpPrivate(g, 0, grpContentCommit, "mallory"), Recipients: grpKeys(alice, bob)})
	wantErr(t, "stale commit from a non-member", err, client.ErrUnauthorized)
	_, _, err = cm.FanOut(ctx, nil, grpPrivate(g, 1, grpContentApplication, "spam"), grpKeys(alice, bob))
	wantErr(t, "fan out from a non-member", err, client.ErrUnauthorized)
	grpWantQueue(t, cb, bob, alice.pub, commit("create"))
	// Bob, a member, still can.
	if _, _, err := cb.FanOut(ctx, nil, grpPrivate(g, 1, grpContentApplication, "hi"), grpKeys(alice)); err != nil {
		t.Fatalf("fan out from a member: %v", err)
	}
	checkServing(t, n)
}
