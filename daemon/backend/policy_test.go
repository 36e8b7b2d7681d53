package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// groupState is the stored state of the rig's group.
func (r *receiveRig) groupState(t *testing.T) []byte {
	t.Helper()
	var sg store.Group
	if err := r.b.view(context.Background(), func(tx *store.Tx) (err error) { sg, err = tx.Group(r.group); return }); err != nil {
		t.Fatal(err)
	}
	return sg.State
}

// refusedEvents counts the rig's refusal events whose detail has want.
func (r *receiveRig) refusedEvents(t *testing.T, want string) int {
	t.Helper()
	evs, err := r.b.EventsAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == store.EventRefused && strings.Contains(e.Detail, want) {
			n++
		}
	}
	return n
}

// expectRefused applies a handshake message and checks that it is refused
// by the trust policy: not applied, the group's stored state unchanged,
// and a refusal event that says why.
func (r *receiveRig) expectRefused(t *testing.T, seq uint64, msg, sender []byte, why string) {
	t.Helper()
	before := r.groupState(t)
	events := r.refusedEvents(t, why)
	applied, err := r.apply(seq, msg, sender)
	if err != nil || applied {
		t.Fatalf("applied %v, %v; want refused", applied, err)
	}
	if !bytes.Equal(r.groupState(t), before) {
		t.Fatal("the refused message changed the group")
	}
	if r.refusedEvents(t, why) != events+1 {
		t.Fatalf("no refusal event saying %q", why)
	}
}

// A member that adds a leaf whose credential names another identity than
// its signature key's is refused, and the refusal is an event.
func TestImpersonatingAddRefused(t *testing.T) {
	r := receiveSetup(t)
	victim, _, _ := ed25519.GenerateKey(rand.Reader)
	mpub, mpriv, _ := ed25519.GenerateKey(rand.Reader)
	kp, _, err := mls.GenerateKeyPackage(DefaultCipherSuite, &mls.Signer{
		Credential: mls.NewBasicCredential(victim), SignaturePub: mpub, SignaturePriv: mpriv.Seed(),
	}, &mls.KeyPackageParams{ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.peer.AddMembers([]*mls.KeyPackage{kp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.expectRefused(t, 2, res.Message, r.peerKey.Public().(ed25519.PublicKey), ErrIdentityMismatch.Error())
	// An honest Add afterwards goes through.
	if err := r.peer.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	hpub, hpriv, _ := ed25519.GenerateKey(rand.Reader)
	honest, _, err := mls.GenerateKeyPackage(DefaultCipherSuite, &mls.Signer{
		Credential: mls.NewBasicCredential(hpub), SignaturePub: hpub, SignaturePriv: hpriv.Seed(),
	}, &mls.KeyPackageParams{ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	res, err = r.peer.AddMembers([]*mls.KeyPackage{honest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := r.apply(3, res.Message, r.peerKey.Public().(ed25519.PublicKey)); err != nil || !applied {
		t.Fatalf("honest add: %v %v", applied, err)
	}
}

// External commits: a "resync" under another member's identity (its
// credential, the attacker's key) and a plain external join by a stranger
// are both refused; only members enter by invitation.
func TestExternalCommitsRefused(t *testing.T) {
	r := receiveSetup(t)
	gi, err := r.peer.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	peerID := r.peerKey.Public().(ed25519.PublicKey)
	spub, spriv, _ := ed25519.GenerateKey(rand.Reader)
	// Impersonating resync: the credential names the peer, the key is the
	// stranger's.
	_, commit, err := mls.JoinExternal(gi, &mls.Signer{Credential: mls.NewBasicCredential(peerID), SignaturePub: spub, SignaturePriv: spriv.Seed()},
		&mls.ExternalJoinOptions{Resync: true, ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	r.expectRefused(t, 2, commit, spub, ErrIdentityMismatch.Error())
	// A stranger joining by itself.
	_, commit, err = mls.JoinExternal(gi, &mls.Signer{Credential: mls.NewBasicCredential(spub), SignaturePub: spub, SignaturePriv: spriv.Seed()},
		&mls.ExternalJoinOptions{ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	r.expectRefused(t, 3, commit, spub, "not a resync")
	// The real peer's resync (same identity, same key) is accepted.
	_, commit, err = mls.JoinExternal(gi, &mls.Signer{Credential: mls.NewBasicCredential(peerID), SignaturePub: peerID, SignaturePriv: r.peerKey.Seed()},
		&mls.ExternalJoinOptions{Resync: true, ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := r.apply(4, commit, peerID); err != nil || !applied {
		t.Fatalf("the member's own resync: %v %v", applied, err)
	}
}

// controlCounter counts the control messages (GroupInfo requests and
// answers) the node is asked to deliver.
type controlCounter struct {
	nodestore.Store
	mu sync.Mutex
	n  int
}

func (c *controlCounter) Enqueue(ctx context.Context, recipient, sender, clientMsgID, payload []byte) (uint64, bool, error) {
	if bytes.HasPrefix(payload, controlMagic) {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return c.Store.Enqueue(ctx, recipient, sender, clientMsgID, payload)
}

func (c *controlCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// A forged message of a later epoch from a non-member makes no member ask
// for a GroupInfo: it costs the group no traffic. The same from a member
// does (that is what rejoining is for).
func TestForgedLaterEpochFromStrangerNoRejoin(t *testing.T) {
	cc := &controlCounter{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		cc.Store = st
		return cc
	})
	alice, bob, carol := groupsStart(t, node), groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	g, gid := groupsForm(t, "forged", alice, bob, carol)

	// The stranger's own group under the same id, moved to a later epoch.
	_, spk, _ := ed25519.GenerateKey(rand.Reader)
	spub := spk.Public().(ed25519.PublicKey)
	signer := &mls.Signer{Credential: mls.NewBasicCredential(spub), SignaturePub: spub, SignaturePriv: spk.Seed()}
	fake, err := mls.CreateGroup(DefaultCipherSuite, g.ID, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := fake.SelfUpdate(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := fake.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
	}
	stranger := pipelinePeer(t, node, spk)
	before := cc.count()
	for i := range 6 {
		msg, err := fake.Protect([]byte("forged"), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range []*groupsUser{alice, bob, carol} {
			if _, _, err := stranger.Enqueue(ctx, to.id, msg, []byte{byte(i), to.id[0]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Alice sends after the forgeries: once Bob and Carol read it, they
	// have handled the forged envelopes.
	if _, err := alice.b.Send(ctx, gid, "after", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob and carol read past the forgeries", func() bool {
		return len(groupsTexts(t, bob, gid)) == 1 && len(groupsTexts(t, carol, gid)) == 1
	})
	// A request would have been queued in the transaction that handled
	// the forged envelope: it is either still in the outbox or at the node.
	for _, u := range []*groupsUser{alice, bob, carol} {
		var items []store.OutboxItem
		if err := u.b.view(ctx, func(tx *store.Tx) (err error) { items, err = tx.PendingOutbox(100); return }); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if bytes.HasPrefix(it.Payload, controlMagic) {
				t.Fatalf("a control message waits in the outbox: %+v", it)
			}
		}
	}
	if n := cc.count() - before; n != 0 {
		t.Fatalf("6 forged envelopes from a stranger caused %d control messages, want 0", n)
	}
	for _, u := range []*groupsUser{alice, bob, carol} {
		if m, err := u.b.Members(ctx, gid); err != nil || m.Epoch != 1 {
			t.Fatalf("member at epoch %d, %v", m.Epoch, err)
		}
	}
}
