package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// leafTypes are the credential types of u's leaf in group as member's
// daemon sees them.
func leafTypes(t *testing.T, member *groupsUser, group []byte, device []byte) []mls.CredentialType {
	t.Helper()
	var types []mls.CredentialType
	if err := member.b.view(context.Background(), func(tx *store.Tx) error {
		_, g, err := loadGroup(tx, group)
		if err != nil {
			return err
		}
		for _, m := range g.Members() {
			if bytes.Equal(m.SignatureKey, device) {
				types, _ = g.CredentialTypesOf(m.Leaf)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return types
}

// TestOldGroupTakesLinkedDevice: a group whose leaves were made by a qpd
// before linked devices (basic credential type only) refuses alice's
// x509 device with an error naming Bob, the member whose leaf lacks the
// type, after alice's own leaf was renewed on the way; once Bob's daemon,
// restarted, renews his leaf too, the device joins, through a real node.
func TestOldGroupTakesLinkedDevice(t *testing.T) {
	basicOnlySigner.Store(true)
	t.Cleanup(func() { basicOnlySigner.Store(false) })
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	g, err := bob.b.CreateGroup(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	if _, _, err := bob.b.Invite(ctx, gid, []ed25519.PublicKey{alice.id}); err != nil {
		t.Fatal(err)
	}
	joinOne(t, alice, "alice joins")
	for _, who := range [][]byte{alice.id, bob.id} {
		if got := leafTypes(t, bob, g.ID, who); !slices.Equal(got, []mls.CredentialType{mls.CredentialBasic}) {
			t.Fatalf("old leaf types %v", got)
		}
	}
	// From here on both run the new code.
	basicOnlySigner.Store(false)
	alice2, dev := linkByHand(t, node, alice)

	_, _, err = alice.b.runPlan(ctx, gid, commitPlan{kind: intentOwnDevices}, 0)
	var mu *MembersMustUpdateError
	if !errors.As(err, &mu) || !errors.Is(err, ErrMembersMustUpdate) || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("adding the device before Bob updates: %v", err)
	}
	if mu.Self || len(mu.People) != 1 || !bytes.Equal(mu.People[0], bob.id) || mu.Type != mls.CredentialX509 {
		t.Fatalf("error names %x (self %v, type %v), want bob", mu.People, mu.Self, mu.Type)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(FormatKey(bob.id))) {
		t.Fatalf("error text does not name bob: %v", err)
	}
	// alice's own leaf was renewed before the add.
	groupsWait(t, "bob sees alice's renewed leaf", func() bool {
		return slices.Contains(leafTypes(t, bob, g.ID, alice.id), mls.CredentialX509)
	})

	// Bob's daemon, restarted, renews its leaf once connected, once.
	bob.stop()
	bob = groupsStartOn(t, node, Config{}, bob.b.st)
	groupsWait(t, "alice sees bob's renewed leaf", func() bool {
		return slices.Contains(leafTypes(t, alice, g.ID, bob.id), mls.CredentialX509)
	})
	// Alice may apply the commit before Bob has the node's answer and
	// merges it: until then Bob's own state still has the old leaf.
	groupsWait(t, "bob merged its renewal", func() bool {
		return slices.Contains(leafTypes(t, bob, g.ID, bob.id), mls.CredentialX509)
	})
	if n, err := bob.b.RefreshCapabilities(ctx, nil); err != nil || n != 0 {
		t.Fatalf("bob's second refresh renewed %d groups: %v", n, err)
	}
	if _, _, err := alice.b.runPlan(ctx, gid, commitPlan{kind: intentOwnDevices}, 0); err != nil {
		t.Fatalf("adding the device after both updates: %v", err)
	}
	joinOne(t, alice2, "alice's device joins the old group")
	groupsWait(t, "bob sees alice's device", func() bool {
		return len(leafTypes(t, bob, g.ID, dev)) > 0
	})
	if _, err := alice2.b.Send(ctx, gid, "from the device", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob reads the device's message", func() bool {
		return bytes.Equal(senders(t, bob, gid)["from the device"], alice.id)
	})
}
