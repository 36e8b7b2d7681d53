package devid

import (
	"errors"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/mls"
)

const cs = mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

// device is one device's MLS signer, certified by u.
func device(t *testing.T, u *User, name string) *mls.Signer {
	t.Helper()
	pub, priv := newKey(t)
	chain, err := u.IssueDevice(pub, name, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Signer(chain, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// basic is the single-device form: a basic credential whose identity is
// the signature key, with x509 among the credential types it accepts.
func basic(t *testing.T) *mls.Signer {
	t.Helper()
	pub, priv := newKey(t)
	return &mls.Signer{
		Credential:      mls.NewBasicCredential(pub),
		SignaturePub:    pub,
		SignaturePriv:   priv.Seed(),
		CredentialTypes: []mls.CredentialType{mls.CredentialX509},
	}
}

func keyPackage(t *testing.T, s *mls.Signer) (*mls.KeyPackage, *mls.KeyPackagePrivate) {
	t.Helper()
	kp, priv, err := mls.GenerateKeyPackage(cs, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp, priv
}

var policy = mls.Policy{Identity: Rule{}}

// A group of alice's device (x509), bob's device (x509) and mallory, a
// member with a basic credential who applies no rule of her own. Mallory
// commits the Add of a device certificate that claims alice's user
// certificate but that mallory signed: bob and alice refuse the commit
// and stay in their epoch. The same Add of a device alice did issue is
// accepted, and bob sees both of alice's leaves as one user.
func TestForgedDeviceRefusedByMembers(t *testing.T) {
	alice, bob := newUser(t), newUser(t)
	aliceLaptop := device(t, alice, "laptop")
	bobPhone := device(t, bob, "phone")
	mallory := basic(t)

	ga, err := mls.CreateGroup(cs, nil, aliceLaptop, &mls.CreateOptions{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	bobKP, bobPriv := keyPackage(t, bobPhone)
	malKP, malPriv := keyPackage(t, mallory)
	res, err := ga.AddMembers([]*mls.KeyPackage{bobKP, malKP}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ga.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	gb, err := mls.JoinFromWelcome(res.Welcome, bobPriv, &mls.JoinOptions{Policy: policy})
	if err != nil {
		t.Fatalf("bob joins a tree of x509 and basic leaves: %v", err)
	}
	gm, err := mls.JoinFromWelcome(res.Welcome, malPriv, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Mallory's forgery: a device key she holds, a certificate she
	// signed, and alice's real user certificate after it.
	stranger := newUser(t)
	fakePub, fakePriv := newKey(t)
	forged, err := stranger.IssueDevice(fakePub, "alice's tablet", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	forgedSigner, err := Signer([][]byte{forged[0], alice.Certificate}, fakePriv)
	if err != nil {
		t.Fatal(err)
	}
	forgedKP, _ := keyPackage(t, forgedSigner)
	bad, err := gm.AddMembers([]*mls.KeyPackage{forgedKP}, nil)
	if err != nil {
		t.Fatalf("mallory (no rule) commits the forged Add: %v", err)
	}
	for name, g := range map[string]*mls.Group{"bob": gb, "alice": ga} {
		epoch := g.Epoch()
		_, err := g.ProcessMessage(bad.Message)
		if !errors.Is(err, mls.ErrCredentialRefused) || !errors.Is(err, ErrNotIssuedByUser) {
			t.Fatalf("%s processes the forged Add: %v, want ErrCredentialRefused and ErrNotIssuedByUser", name, err)
		}
		if g.Epoch() != epoch || len(g.Members()) != 3 {
			t.Fatalf("%s moved to epoch %d with %d members after a refused commit", name, g.Epoch(), len(g.Members()))
		}
	}
	// Alice refuses to commit it herself, too.
	if _, err := ga.AddMembers([]*mls.KeyPackage{forgedKP}, nil); !errors.Is(err, ErrNotIssuedByUser) {
		t.Fatalf("alice commits the forged Add: %v", err)
	}

	// The genuine second device of alice, committed by mallory: accepted.
	if err := gm.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	aliceTablet := device(t, alice, "tablet")
	tabletKP, _ := keyPackage(t, aliceTablet)
	good, err := gm.AddMembers([]*mls.KeyPackage{tabletKP}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gb.ProcessMessage(good.Message)
	if err != nil {
		t.Fatalf("bob processes alice's genuine device: %v", err)
	}
	if len(r.Added) != 1 {
		t.Fatalf("added %d members", len(r.Added))
	}
	users := map[string]int{}
	for _, m := range gb.Members() {
		u, err := Rule{}.User(&m.Credential, m.SignatureKey)
		if err != nil {
			t.Fatal(err)
		}
		users[string(u)]++
	}
	if users[string(alice.PublicKey())] != 2 || users[string(bob.PublicKey())] != 1 || users[string(mallory.SignaturePub)] != 1 {
		t.Fatalf("users in bob's group: %d, want alice twice, bob and mallory once", len(users))
	}
}

// A device's leaf may be replaced by one of the same user only, whether
// the credential changes form (basic to x509, for an identity made before
// devices) or not.
func TestValidSuccessorKeepsTheUser(t *testing.T) {
	// The single-device identity: its key is the user key.
	_, idPriv := newKey(t)
	u, err := NewUser(idPriv, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	idPub := u.PublicKey()
	old := mls.Member{Leaf: 3, Credential: mls.NewBasicCredential(idPub), SignatureKey: idPub}
	renewed := device(t, u, "laptop")
	next := &mls.LeafInfo{Credential: renewed.Credential, SignatureKey: renewed.SignaturePub}
	if err := (Rule{}).ValidSuccessor(old, next); err != nil {
		t.Fatalf("same user, new device certificate: %v", err)
	}
	other := device(t, newUser(t), "laptop")
	next = &mls.LeafInfo{Credential: other.Credential, SignatureKey: other.SignaturePub}
	if err := (Rule{}).ValidSuccessor(old, next); !errors.Is(err, ErrOtherUser) {
		t.Fatalf("another user's device: %v, want ErrOtherUser", err)
	}
	// A basic credential that names another key than the leaf's.
	next = &mls.LeafInfo{Credential: mls.NewBasicCredential(idPub), SignatureKey: other.SignaturePub}
	if err := (Rule{}).ValidateLeaf(next); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("basic credential of another key: %v, want ErrWrongKey", err)
	}
	if _, err := (Rule{}).User(&mls.Credential{Type: 0xf000}, idPub); !errors.Is(err, ErrUnsupportedCredential) {
		t.Fatalf("unknown type: %v", err)
	}
}

// The rule judges certificates by its clock: a device certificate that
// has expired is refused in a KeyPackage as anywhere else.
func TestExpiredDeviceKeyPackageRefused(t *testing.T) {
	u := newUser(t)
	s := device(t, u, "old")
	kp, _ := keyPackage(t, s)
	late := mls.Policy{Identity: Rule{Now: func() time.Time { return time.Now().Add(DefaultDeviceLifetime + time.Hour) }}}
	if err := late.CheckKeyPackage(kp, cs); !errors.Is(err, mls.ErrCredentialRefused) || !errors.Is(err, ErrExpired) {
		t.Fatalf("CheckKeyPackage = %v, want ErrExpired", err)
	}
	if err := policy.CheckKeyPackage(kp, cs); err != nil {
		t.Fatalf("valid device KeyPackage: %v", err)
	}
}
