package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// replayingStore is a node that hands out an old device list of one user,
// still signed by that user, in place of the current one.
type replayingStore struct {
	nodestore.Store
	mu     sync.Mutex
	user   []byte
	old    []byte
	oldVer uint64
}

func (s *replayingStore) DeviceList(ctx context.Context, user []byte) ([]byte, uint64, error) {
	s.mu.Lock()
	victim, old, v := s.user, s.old, s.oldVer
	s.mu.Unlock()
	if victim != nil && bytes.Equal(user, victim) {
		return old, v, nil
	}
	return s.Store.DeviceList(ctx, user)
}

// TestDeviceListRollbackRefused: once a daemon accepted version 2 of a
// person's device list (its own, published by revoking a device; or a
// contact's, fetched to invite), a node that hands out version 1 again
// (which still names the revoked device) is refused, for one's own list
// and for a contact's, and nothing is committed.
func TestDeviceListRollbackRefused(t *testing.T) {
	replay := &replayingStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		replay.Store = st
		return replay
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, dev := linkByHand(t, node, alice)
	ctx := context.Background()

	old, oldVer, err := replay.Store.DeviceList(ctx, alice.id)
	if err != nil || oldVer != 1 {
		t.Fatalf("list before the revocation: version %d, %v", oldVer, err)
	}
	if info, err := alice.b.Devices(ctx); err != nil || info.Version != 1 || len(info.Devices) != 2 {
		t.Fatalf("devices before the revocation: %+v, %v", info, err)
	}
	if res, err := alice.b.RevokeDevice(ctx, FormatKey(dev)); err != nil || res.Version != 2 {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	g, err := bob.b.CreateGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.b.Invite(ctx, FormatKey(g.ID), []ed25519.PublicKey{alice.id}); err != nil {
		t.Fatalf("invite with the current list: %v", err)
	}

	replay.mu.Lock()
	replay.user, replay.old, replay.oldVer = alice.id, old, oldVer
	replay.mu.Unlock()

	if info, err := alice.b.Devices(ctx); !errors.Is(err, ErrDeviceListRollback) {
		t.Fatalf("own devices from a replayed list: %+v, %v, want ErrDeviceListRollback", info, err)
	}
	if _, err := alice.b.RevokeDevice(ctx, FormatKey(alice.id)[:16]); !errors.Is(err, ErrDeviceListRollback) {
		t.Fatalf("revoke on a replayed list: %v, want ErrDeviceListRollback", err)
	}
	g2, err := bob.b.CreateGroup(ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g2.ID)
	_, _, err = bob.b.Invite(ctx, gid, []ed25519.PublicKey{alice.id})
	if !errors.Is(err, ErrDeviceListRollback) || !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("invite on a replayed list: %v, want ErrDeviceListRollback and ErrIdentityMismatch", err)
	}
	if m, err := bob.b.Members(ctx, gid); err != nil || len(m.Members) != 1 || m.Epoch != 0 {
		t.Fatalf("group after the refused invite: %+v, %v", m, err)
	}

	// The honest node again.
	replay.mu.Lock()
	replay.user = nil
	replay.mu.Unlock()
	if info, err := alice.b.Devices(ctx); err != nil || info.Version != 2 || len(info.Devices) != 1 {
		t.Fatalf("devices from the honest node: %+v, %v", info, err)
	}
	if _, _, err := bob.b.Invite(ctx, gid, []ed25519.PublicKey{alice.id}); err != nil {
		t.Fatalf("invite from the honest node: %v", err)
	}
}
