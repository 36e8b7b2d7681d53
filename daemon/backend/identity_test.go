package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// substitutingStore is a malicious node: it answers a fetch for victim's
// KeyPackage with one it made itself, whose credential names the victim
// but whose signature key is the node's own.
type substitutingStore struct {
	nodestore.Store
	mu     sync.Mutex
	victim []byte
	fake   []byte
}

func (s *substitutingStore) TakeKeyPackage(ctx context.Context, identity []byte) ([]byte, error) {
	s.mu.Lock()
	victim, fake := s.victim, s.fake
	s.mu.Unlock()
	if victim != nil && bytes.Equal(identity, victim) {
		return fake, nil
	}
	return s.Store.TakeKeyPackage(ctx, identity)
}

func TestSameKeyRule(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if u, err := (SameKeyRule{}).User(mls.NewBasicCredential(pub), pub); err != nil || !bytes.Equal(u, pub) {
		t.Fatalf("own key: %x %v", u, err)
	}
	for name, c := range map[string]struct {
		cred mls.Credential
		key  []byte
	}{
		"another key":  {mls.NewBasicCredential(pub), other},
		"short":        {mls.NewBasicCredential(pub[:31]), pub[:31]},
		"x509":         {mls.Credential{Type: mls.CredentialX509, Certificates: [][]byte{pub}}, pub},
		"empty":        {mls.Credential{Type: mls.CredentialBasic}, nil},
		"one bit flip": {mls.NewBasicCredential(append(bytes.Clone(pub[:31]), pub[31]^1)), pub},
	} {
		if _, err := (SameKeyRule{}).User(c.cred, c.key); !errors.Is(err, ErrIdentityMismatch) {
			t.Errorf("%s: %v, want ErrIdentityMismatch", name, err)
		}
	}
}

// A node that hands out its own KeyPackage under Bob's name cannot get
// itself invited in Bob's place: the KeyPackage's signature key is not
// Bob's identity key. The invitation fails with a typed error, nothing is
// committed, and the refusal is an event.
func TestKeyPackageSubstitutionRefused(t *testing.T) {
	sub := &substitutingStore{}
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		sub.Store = st
		return sub
	})
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()

	// The node's own key signs a KeyPackage that says "bob".
	mpub, mpriv, _ := ed25519.GenerateKey(rand.Reader)
	fake, _, err := mls.GenerateKeyPackage(DefaultCipherSuite, &mls.Signer{
		Credential: mls.NewBasicCredential(bob.id), SignaturePub: mpub, SignaturePriv: mpriv.Seed(),
	}, &mls.KeyPackageParams{ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	if err != nil {
		t.Fatal(err)
	}
	sub.mu.Lock()
	sub.victim, sub.fake = bob.id, fake.Marshal()
	sub.mu.Unlock()

	info, err := alice.b.FetchKey(ctx, bob.id)
	if err != nil || info.Valid || !errors.Is(info.Err, ErrIdentityMismatch) {
		t.Fatalf("fetched substituted KeyPackage: valid=%v err=%v problem=%q", info.Valid, err, info.Problem)
	}
	g, err := alice.b.CreateGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	if _, _, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{bob.id}); !errors.Is(err, ErrIdentityMismatch) || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("invite with a substituted KeyPackage: %v, want ErrInvalidArgument and ErrIdentityMismatch", err)
	}
	m, err := alice.b.Members(ctx, gid)
	if err != nil || len(m.Members) != 1 || m.Epoch != 0 {
		t.Fatalf("group after the refused invite: %+v %v; want alice alone at epoch 0", m, err)
	}
	evs, err := alice.b.EventsAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if e.Kind == store.EventRefused && bytes.Equal(e.Member, bob.id) && bytes.Equal(e.GroupID, g.ID) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no refusal event for the substituted KeyPackage in %+v", evs)
	}

	// The honest node again: Bob's own KeyPackage goes through.
	sub.mu.Lock()
	sub.victim = nil
	sub.mu.Unlock()
	if _, _, err := alice.b.Invite(ctx, gid, []ed25519.PublicKey{bob.id}); err != nil {
		t.Fatalf("invite with bob's own KeyPackage: %v", err)
	}
}
