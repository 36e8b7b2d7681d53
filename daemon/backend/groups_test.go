package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	nodestore "github.com/quicproquo/quicproquo/node/store"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// groupsUser is a running Backend with MLS groups against a node.
type groupsUser struct {
	b    *Backend
	id   ed25519.PublicKey
	stop func() // stops the Backend (it also stops at cleanup)
}

func groupsStart(t *testing.T, node *testnode.Node) *groupsUser {
	t.Helper()
	return groupsStartWith(t, node, Config{})
}

func groupsStartWith(t *testing.T, node *testnode.Node, cfg Config) *groupsUser {
	t.Helper()
	return groupsStartOn(t, node, cfg, nil)
}

// groupsStartOn is groupsStartWith over an existing store (nil: a new one),
// as a daemon restarted on its state folder; setup runs before Run.
func groupsStartOn(t *testing.T, node *testnode.Node, cfg Config, st *store.Store, setup ...func(*Backend)) *groupsUser {
	t.Helper()
	cfg.NodeAddr, cfg.NodeCert, cfg.Groups, cfg.KeyPackages, cfg.KeyPackageTarget = node.Addr, node.CertDER, true, MLSKeyPackages{}, 3
	// The group mechanics tests take every invitation; consent_test.go
	// tests the default (with a setup that sets it back).
	cfg.Invitations = InviteAnyone
	var b *Backend
	if st == nil {
		b = backendNew(t, cfg)
	} else {
		b = backendOn(t, cfg, st)
	}
	for _, f := range setup {
		f(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	r, err := b.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := &groupsUser{b: b, id: r.Identity, stop: stop}
	groupsWait(t, "connected with KeyPackages", func() bool {
		st, err := b.Status(ctx)
		return err == nil && st.KeyPackagesKnown && st.KeyPackagesLeft == 3
	})
	return u
}

// groupsForm has creator create a group named name and invite members,
// and has each of them join; it returns the group and its key.
func groupsForm(t *testing.T, name string, creator *groupsUser, members ...*groupsUser) (GroupInfo, string) {
	t.Helper()
	ctx := context.Background()
	g, err := creator.b.CreateGroup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	ids := make([]ed25519.PublicKey, len(members))
	for i, m := range members {
		ids[i] = m.id
	}
	if _, _, err := creator.b.Invite(ctx, gid, ids); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if j, err := m.b.Join(ctx, 10*time.Second); err != nil || len(j) != 1 {
			t.Fatalf("join %s: %v %v", name, j, err)
		}
	}
	return g, gid
}

func groupsWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupsTexts reads a user's whole history of a group.
func groupsTexts(t *testing.T, u *groupsUser, group string) []string {
	t.Helper()
	p, err := u.b.Messages(context.Background(), MessagesQuery{Group: group, Limit: store.MaxMessageQuery})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range p.Messages {
		out = append(out, m.Text)
	}
	return out
}

func TestGroupConversation(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()

	g, err := alice.b.CreateGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	gi, added, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{bob.id, carol.id})
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || gi.Epoch != 1 || gi.MemberCount != 3 {
		t.Fatalf("invite: %+v, added %d", gi, len(added))
	}
	for _, u := range []*groupsUser{bob, carol} {
		joined, err := u.b.Join(ctx, 10*time.Second)
		if err != nil || len(joined) != 1 || joined[0].Name != "team" || !bytes.Equal(joined[0].ID, g.ID) {
			t.Fatalf("join: %+v, %v", joined, err)
		}
	}
	if _, err := alice.b.Send(ctx, gid, "hello from alice", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.b.Send(ctx, gid, "hello from bob", nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*groupsUser{alice, bob, carol} {
		groupsWait(t, "two messages", func() bool { return len(groupsTexts(t, u, gid)) == 2 })
	}
	// Carol removes Bob; everyone left agrees on the state.
	if _, err := carol.b.Remove(ctx, gid, bob.id); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob learns he was removed", func() bool {
		_, err := bob.b.Send(ctx, gid, "still here?", nil)
		return errors.Is(err, ErrNotMember)
	})
	groupsWait(t, "alice at epoch 2", func() bool {
		m, err := alice.b.Members(ctx, gid)
		return err == nil && m.Epoch == 2
	})
	ma, _ := alice.b.Members(ctx, gid)
	mc, _ := carol.b.Members(ctx, gid)
	if len(ma.Members) != 2 || !bytes.Equal(ma.EpochAuthenticator, mc.EpochAuthenticator) {
		t.Fatalf("after remove: alice %+v carol %+v", ma, mc)
	}
}

// Concurrent commits from several members never fork the group.
func TestGroupConcurrentCommits(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	users := []*groupsUser{groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)}
	ctx := context.Background()
	g, err := users[0].b.CreateGroup(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	if _, _, err := users[0].b.Invite(ctx, gid, []ed25519.PublicKey{users[1].id, users[2].id}); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[1:] {
		if j, err := u.b.Join(ctx, 10*time.Second); err != nil || len(j) != 1 {
			t.Fatalf("join: %v %v", j, err)
		}
	}
	const rounds = 3
	var wg sync.WaitGroup
	errs := make(chan error, len(users)*rounds)
	for _, u := range users {
		wg.Go(func() {
			for range rounds {
				if _, err := u.b.Update(ctx, gid); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := uint64(1 + len(users)*rounds)
	for i, u := range users {
		groupsWait(t, fmt.Sprintf("user %d at epoch %d", i, want), func() bool {
			m, err := u.b.Members(ctx, gid)
			return err == nil && m.Epoch == want
		})
	}
	m0, _ := users[0].b.Members(ctx, gid)
	for _, u := range users[1:] {
		m, _ := u.b.Members(ctx, gid)
		if !bytes.Equal(m.EpochAuthenticator, m0.EpochAuthenticator) {
			t.Fatal("members disagree on the epoch authenticator")
		}
	}
}

// A commit that loses its epoch is discarded, the winning commit is
// applied, and the intent is built again on the new epoch.
func TestGroupStaleCommitRetried(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "stale", alice, bob)
	built := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	bob.b.beforeSubmit = func() {
		once.Do(func() {
			close(built)
			<-release
		})
	}
	bobDone := make(chan error, 1)
	go func() {
		_, err := bob.b.Update(ctx, gid)
		bobDone <- err
	}()
	<-built // Bob's commit for epoch 1 is pending.
	if _, err := alice.b.Update(ctx, gid); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-bobDone; err != nil {
		t.Fatalf("Bob's update after losing the epoch: %v", err)
	}
	groupsWait(t, "both at epoch 3", func() bool {
		ma, err1 := alice.b.Members(ctx, gid)
		mb, err2 := bob.b.Members(ctx, gid)
		return err1 == nil && err2 == nil && ma.Epoch == 3 && mb.Epoch == 3 && bytes.Equal(ma.EpochAuthenticator, mb.EpochAuthenticator)
	})
	// The lost commit is in Bob's outbox as dropped, the winner as sent.
	var states []store.OutboxState
	err := bob.b.view(ctx, func(tx *store.Tx) error {
		for id := int64(1); ; id++ {
			it, err := tx.Outbox(id)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if it.Kind == store.OutboxCommit {
				states = append(states, it.State)
			}
		}
	})
	if err != nil || len(states) != 2 || states[0] != store.OutboxDropped || states[1] != store.OutboxSent {
		t.Fatalf("Bob's commit outbox: %v, %v", states, err)
	}
}

// A commit whose submission fails with the connection stays pending (and
// its group's messages wait); on the next connection it is submitted again
// with the same client message id and merged once the node accepts it.
func TestGroupPendingCommitResolvedOnReconnect(t *testing.T) {
	dir := t.TempDir()
	node := testnode.StartNode(t, dir, "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "flaky", alice, bob)
	var once sync.Once
	bob.b.beforeSubmit = func() { once.Do(node.Stop) }
	if _, err := bob.b.Update(ctx, gid); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("update with the node gone: %v", err)
	}
	if _, err := bob.b.Send(ctx, gid, "waits", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("send during a commit in flight: %v", err)
	}
	testnode.StartNode(t, dir, node.Addr)
	groupsWait(t, "both at epoch 2", func() bool {
		ma, err1 := alice.b.Members(ctx, gid)
		mb, err2 := bob.b.Members(ctx, gid)
		return err1 == nil && err2 == nil && ma.Epoch == 2 && mb.Epoch == 2 && bytes.Equal(ma.EpochAuthenticator, mb.EpochAuthenticator)
	})
	if _, err := bob.b.Send(ctx, gid, "after", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "alice reads bob", func() bool {
		txt := groupsTexts(t, alice, gid)
		return len(txt) == 1 && txt[0] == "after"
	})
}

// The periodic self-update moves every member's keys forward.
func TestGroupPeriodicSelfUpdate(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := groupsStart(t, node)
	bob := groupsStartWith(t, node, Config{SelfUpdateInterval: 100 * time.Millisecond})
	ctx := context.Background()
	g, err := alice.b.CreateGroup(ctx, "rotate")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	if _, _, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{bob.id}); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob's self-updates reach alice", func() bool {
		m, err := alice.b.Members(ctx, gid)
		return err == nil && m.Epoch >= 3
	})
	groupsWait(t, "same state", func() bool {
		ma, err1 := alice.b.Members(ctx, gid)
		mb, err2 := bob.b.Members(ctx, gid)
		return err1 == nil && err2 == nil && ma.Epoch == mb.Epoch && bytes.Equal(ma.EpochAuthenticator, mb.EpochAuthenticator)
	})
}

// Leaving sends a Remove proposal for oneself; the remaining member with
// the lowest leaf commits it.
func TestGroupLeave(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "leavers", alice, bob, carol)
	if err := carol.b.Leave(ctx, gid); err != nil {
		t.Fatal(err)
	}
	if gs, err := carol.b.Groups(ctx); err != nil || len(gs) != 0 {
		t.Fatalf("carol's groups after leaving: %+v %v", gs, err)
	}
	groupsWait(t, "alice and bob commit carol's leaving", func() bool {
		ma, err1 := alice.b.Members(ctx, gid)
		mb, err2 := bob.b.Members(ctx, gid)
		return err1 == nil && err2 == nil && ma.Epoch == 2 && mb.Epoch == 2 && len(ma.Members) == 2 && bytes.Equal(ma.EpochAuthenticator, mb.EpochAuthenticator)
	})
	groupsWait(t, "carol sees her removal", func() bool {
		var removed bool
		carol.b.view(ctx, func(tx *store.Tx) error {
			evs, err := tx.EventsAfter(0, 1000)
			for _, e := range evs {
				if e.Kind == store.EventMemberRemoved && bytes.Equal(e.Member, carol.id) {
					removed = true
				}
			}
			return err
		})
		return removed
	})
	if _, err := bob.b.Send(ctx, gid, "without carol", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "alice reads bob", func() bool { return len(groupsTexts(t, alice, gid)) == 1 })
}

// A member that lost a commit asks for a GroupInfo and rejoins by an
// external commit; afterwards both agree on the state and talk again.
func TestGroupRejoinAfterLostCommit(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "lossy", alice, bob)
	// Bob loses the next commit from Alice.
	var lost sync.Once
	dropped := make(chan struct{})
	bob.b.gmu.Lock()
	bob.b.dropEnvelope = func(env nodeclient.Envelope) bool {
		drop := false
		if h, err := mls.PeekMessage(env.Payload); err == nil && h.ContentType == mls.ContentCommit {
			lost.Do(func() { drop = true; close(dropped) })
		}
		return drop
	}
	bob.b.gmu.Unlock()
	if _, err := alice.b.Update(ctx, gid); err != nil {
		t.Fatal(err)
	}
	<-dropped
	if _, err := alice.b.Send(ctx, gid, "lost on bob", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob rejoins and both agree", func() bool {
		ma, err1 := alice.b.Members(ctx, gid)
		mb, err2 := bob.b.Members(ctx, gid)
		return err1 == nil && err2 == nil && ma.Epoch == 3 && mb.Epoch == 3 && len(ma.Members) == 2 && len(mb.Members) == 2 &&
			bytes.Equal(ma.EpochAuthenticator, mb.EpochAuthenticator)
	})
	if _, err := alice.b.Send(ctx, gid, "welcome back", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob reads again", func() bool {
		txt := groupsTexts(t, bob, gid)
		return len(txt) > 0 && txt[len(txt)-1] == "welcome back"
	})
	if _, err := bob.b.Send(ctx, gid, "thanks", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "alice reads bob", func() bool {
		txt := groupsTexts(t, alice, gid)
		return len(txt) > 0 && txt[len(txt)-1] == "thanks"
	})
}

// With ManualJoin a Welcome waits in the store until Join accepts it.
func TestGroupManualJoin(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := groupsStart(t, node)
	bob := groupsStartWith(t, node, Config{ManualJoin: true})
	ctx := context.Background()
	g, err := alice.b.CreateGroup(ctx, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.b.Invite(ctx, FormatKey(g.ID), []ed25519.PublicKey{bob.id}); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "the Welcome stored", func() bool {
		var n int
		bob.b.view(ctx, func(tx *store.Tx) error { ws, err := tx.Welcomes(100); n = len(ws); return err })
		return n == 1
	})
	if gs, _ := bob.b.Groups(ctx); len(gs) != 0 {
		t.Fatalf("joined before Join: %+v", gs)
	}
	j, err := bob.b.Join(ctx, 0)
	if err != nil || len(j) != 1 || j[0].Name != "manual" || j[0].MemberCount != 2 {
		t.Fatalf("Join: %+v %v", j, err)
	}
	if _, err := bob.b.Send(ctx, "manual", "joined by hand", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "alice reads bob", func() bool { return len(groupsTexts(t, alice, FormatKey(g.ID))) == 1 })
}

// failingCommitStore fails the next SubmitCommit after fail is set, the way
// a node's broken disk would, and records the client message id of every
// SubmitCommit it sees.
type failingCommitStore struct {
	nodestore.Store
	mu   sync.Mutex
	fail bool
	ids  [][]byte
}

func (s *failingCommitStore) SubmitCommit(ctx context.Context, groupID []byte, epoch uint64, sender, clientMsgID, commit []byte,
	recipients [][]byte, welcome []byte, welcomeRecipients [][]byte) (nodestore.CommitResult, error) {
	s.mu.Lock()
	s.ids = append(s.ids, bytes.Clone(clientMsgID))
	fail := s.fail
	s.fail = false
	s.mu.Unlock()
	if fail {
		return nodestore.CommitResult{}, errors.New("disk I/O error")
	}
	return s.Store.SubmitCommit(ctx, groupID, epoch, sender, clientMsgID, commit, recipients, welcome, welcomeRecipients)
}

// A node that answers a commit with ErrInternal gave no verdict: the commit
// stays pending (no merge, no discard, sends wait), and the next commit
// attempt resubmits it with the same client message id before its own.
func TestGroupCommitPendingOnNodeInternalError(t *testing.T) {
	fs := &failingCommitStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		fs.Store = st
		return fs
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "broken disk", alice, bob)
	fs.mu.Lock()
	fs.fail = true
	before := len(fs.ids)
	fs.mu.Unlock()
	if _, err := bob.b.Update(ctx, gid); !errors.Is(err, ErrNotConnected) || !strings.Contains(err.Error(), "stays pending") {
		t.Fatalf("update answered ErrInternal: %v, want ErrNotConnected saying the commit stays pending", err)
	}
	if m, err := bob.b.Members(ctx, gid); err != nil || m.Epoch != 1 {
		t.Fatalf("bob after the failed submit: epoch %d, %v; want 1 (nothing merged)", m.Epoch, err)
	}
	if _, err := bob.b.Send(ctx, gid, "waits", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("send with a commit pending: %v, want ErrNotConnected", err)
	}
	// The next commit attempt first resubmits the pending one.
	if _, err := bob.b.Update(ctx, gid); err != nil {
		t.Fatalf("update after the node recovered: %v", err)
	}
	fs.mu.Lock()
	ids := fs.ids[before:]
	fs.mu.Unlock()
	if len(ids) < 2 || !bytes.Equal(ids[0], ids[1]) {
		t.Fatalf("client message ids submitted: %x; want the failed commit resubmitted with the same id", ids)
	}
	groupsWait(t, "both at epoch 3 with the same authenticator", func() bool {
		ma, err1 := alice.b.Members(ctx, gid)
		mb, err2 := bob.b.Members(ctx, gid)
		return err1 == nil && err2 == nil && ma.Epoch == 3 && mb.Epoch == 3 && bytes.Equal(ma.EpochAuthenticator, mb.EpochAuthenticator)
	})
	if _, err := bob.b.Send(ctx, gid, "after", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "alice reads bob", func() bool {
		txt := groupsTexts(t, alice, gid)
		return len(txt) == 1 && txt[0] == "after"
	})
}

// A panic in a scheduled group job (here: committing a member's leaving)
// is recovered and the job dropped: the daemon keeps serving, its locks are
// free, and the commit the job had stored as pending goes out with the next
// commit.
func TestGroupJobPanicRecovered(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "panicky", alice, bob)
	panicked := make(chan struct{})
	var once sync.Once
	alice.b.beforeSubmit = func() {
		once.Do(func() {
			close(panicked)
			panic("injected fault in a group job")
		})
	}
	if err := bob.b.Leave(ctx, gid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-panicked:
	case <-time.After(20 * time.Second):
		t.Fatal("alice never committed bob's leaving")
	}
	// Alice still serves, and her next commit sends the pending one first.
	groupsWait(t, "alice commits again", func() bool {
		_, err := alice.b.Update(ctx, gid)
		return err == nil
	})
	m, err := alice.b.Members(ctx, gid)
	if err != nil || len(m.Members) != 1 || m.Epoch != 3 {
		t.Fatalf("alice after the recovered job: %d members at epoch %d, %v; want herself alone at epoch 3", len(m.Members), m.Epoch, err)
	}
}

// A member's leaving is committed by the next member when the lowest one
// is offline: each further member waits LeaveCommitDelay per rank.
func TestGroupLeaveLowestOffline(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	quick := Config{LeaveCommitDelay: 300 * time.Millisecond}
	alice, bob, carol := groupsStartWith(t, node, quick), groupsStartWith(t, node, quick), groupsStartWith(t, node, quick)
	ctx := context.Background()
	g, gid := groupsForm(t, "absent chair", alice, bob, carol)
	alice.stop() // the lowest leaf, who would commit carol's leaving
	if err := carol.b.Leave(ctx, gid); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob commits carol's leaving", func() bool {
		m, err := bob.b.Members(ctx, gid)
		return err == nil && m.Epoch == 2 && len(m.Members) == 2
	})
	groupsWait(t, "carol sees she has left", func() bool {
		gs, err := carol.b.Groups(ctx)
		if err != nil || len(gs) != 0 {
			return false
		}
		var left bool
		carol.b.view(ctx, func(tx *store.Tx) error {
			evs, err := tx.EventsAfter(0, 1000)
			for _, e := range evs {
				if e.Kind == store.EventLeft && bytes.Equal(e.GroupID, g.ID) {
					left = true
				}
			}
			return err
		})
		return left
	})
}
