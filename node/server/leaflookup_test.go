package server_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// lookupCountStore counts, on the real SQLite store, how often a commit's
// check runs and how the node looks devices up.
type lookupCountStore struct {
	store.Store
	checks, states, single atomic.Int64
}

func (s *lookupCountStore) SubmitCommit(ctx context.Context, groupID []byte, epoch uint64, sender, clientMsgID, commit, welcome []byte, check store.CommitCheck) (store.CommitResult, error) {
	return s.Store.SubmitCommit(ctx, groupID, epoch, sender, clientMsgID, commit, welcome, func(cur store.GroupView) (store.CommitVerdict, error) {
		s.checks.Add(1)
		return check(cur)
	})
}

func (s *lookupCountStore) DeviceStates(ctx context.Context, keys [][]byte) ([]store.DeviceState, error) {
	s.states.Add(1)
	return s.Store.DeviceStates(ctx, keys)
}

func (s *lookupCountStore) Revoked(ctx context.Context, device []byte) (bool, error) {
	s.single.Add(1)
	return s.Store.Revoked(ctx, device)
}

func (s *lookupCountStore) DeviceUsers(ctx context.Context, device []byte) ([][]byte, error) {
	s.single.Add(1)
	return s.Store.DeviceUsers(ctx, device)
}

// A commit adding 200 devices the node has never seen is judged at most
// twice: the first attempt notes every unknown device, one lookup learns
// them all, the second decides.
func TestCommit200LeafLookups(t *testing.T) {
	cs := &lookupCountStore{}
	n := startWrappedNode(t, server.Config{}, store.Limits{}, func(st store.Store) store.Store {
		cs.Store = st
		return cs
	})
	ctx := testCtx(t)
	creator := grouptest.NewMember(t)
	if err := n.store.Register(ctx, creator.Pub); err != nil {
		t.Fatal(err)
	}
	creator.Conn = n.dial(t, creator.Priv)
	creator.Create(t)
	kps := make([]*mls.KeyPackage, 200)
	for i := range kps {
		m := grouptest.NewMember(t)
		if err := n.store.Register(ctx, m.Pub); err != nil {
			t.Fatal(err)
		}
		kps[i] = m.KeyPackage(t)
	}
	res, err := creator.Group.AddMembers(kps, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs.checks.Store(0)
	cs.states.Store(0)
	cs.single.Store(0)
	out, err := creator.Conn.SubmitCommit(ctx, client.CommitRequest{Message: res.Message, Welcome: res.Welcome})
	if err != nil {
		t.Fatalf("SubmitCommit: %v", err)
	}
	if checks, states, single := cs.checks.Load(), cs.states.Load(), cs.single.Load(); checks > 2 || states != 1 || single != 0 {
		t.Fatalf("the commit was judged %d times (want at most 2) with %d batched lookups (want 1) and %d single ones (want 0)", checks, states, single)
	}
	if out.Epoch != 1 {
		t.Fatalf("commit outcome: %+v", out)
	}
}
