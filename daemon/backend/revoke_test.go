package backend

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// groupBlockingStore is a node that cannot commit anything to one group
// (its disk fails for that group's rows).
type groupBlockingStore struct {
	nodestore.Store
	mu    sync.Mutex
	group []byte
}

func (s *groupBlockingStore) SubmitCommit(ctx context.Context, groupID []byte, epoch uint64, sender, clientMsgID, commit, welcome []byte,
	check nodestore.CommitCheck) (nodestore.CommitResult, error) {
	s.mu.Lock()
	blocked := s.group != nil && bytes.Equal(groupID, s.group)
	s.mu.Unlock()
	if blocked {
		return nodestore.CommitResult{}, errors.New("disk I/O error")
	}
	return s.Store.SubmitCommit(ctx, groupID, epoch, sender, clientMsgID, commit, welcome, check)
}

// TestRevokeIncompleteThenCompleted: a revocation whose removal cannot be
// committed in one group says so (ErrRevokeIncomplete, the group named in
// GroupsFailed) rather than succeed; the device list lacks the device
// already, and revoking it again completes the remaining group.
func TestRevokeIncompleteThenCompleted(t *testing.T) {
	bs := &groupBlockingStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		bs.Store = st
		return bs
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, dev := linkByHand(t, node, alice)
	ctx := context.Background()
	_, one := groupsForm(t, "one", alice, bob)
	g2, two := groupsForm(t, "two", alice, bob)
	for _, gid := range []string{one, two} {
		if m, err := alice.b.Members(ctx, gid); err != nil || len(m.Members) != 3 {
			t.Fatalf("group %s before the revocation: %+v, %v", gid, m, err)
		}
	}

	bs.mu.Lock()
	bs.group = g2.ID
	bs.mu.Unlock()
	res, err := alice.b.RevokeDevice(ctx, FormatKey(dev))
	if !errors.Is(err, ErrRevokeIncomplete) {
		t.Fatalf("revoke with one group failing: %+v, %v, want ErrRevokeIncomplete", res, err)
	}
	if res == nil || res.Groups != 1 || len(res.GroupsFailed) != 1 || !strings.HasPrefix(res.GroupsFailed[0], two) {
		t.Fatalf("revoke result: %+v, want one group removed and %s failed", res, two)
	}
	if info, err := alice.b.Devices(ctx); err != nil || len(info.Devices) != 1 {
		t.Fatalf("device list after the incomplete revocation: %+v, %v", info, err)
	}
	if m, err := alice.b.Members(ctx, one); err != nil || len(m.Members) != 2 {
		t.Fatalf("group one after the revocation: %+v, %v", m, err)
	}

	bs.mu.Lock()
	bs.group = nil
	bs.mu.Unlock()
	res, err = alice.b.RevokeDevice(ctx, FormatKey(dev)[:12])
	if err != nil || res.Groups != 1 || len(res.GroupsFailed) != 0 {
		t.Fatalf("revoke again: %+v, %v, want the remaining group done", res, err)
	}
	if m, err := alice.b.Members(ctx, two); err != nil || len(m.Members) != 2 {
		t.Fatalf("group two after the second revoke: %+v, %v", m, err)
	}
	if _, err := alice.b.RevokeDevice(ctx, FormatKey(dev)); !errors.Is(err, ErrDeviceNotFound) {
		t.Fatalf("revoke a third time: %v, want ErrDeviceNotFound", err)
	}
}
