package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// testSigner is the single-device signer of key priv.
func testSigner(priv ed25519.PrivateKey) *mls.Signer {
	s, err := signerOf(store.Identity{PrivateKey: priv})
	if err != nil {
		panic(err)
	}
	return s
}

// mustSigner is the signer of a stored identity.
func mustSigner(t testing.TB, id store.Identity) *mls.Signer {
	t.Helper()
	s, err := signerOf(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newEd25519(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func newStoreBackend(t testing.TB, dir string) *Backend {
	t.Helper()
	st, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := New(Config{Store: st, Groups: true, Invitations: InviteAnyone})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeviceRule: the daemon's rule accepts the single-device basic
// credential and a device chain issued by the user, reporting the user
// for both, and refuses a chain another key issued, with
// ErrIdentityMismatch and the devid reason.
func TestDeviceRule(t *testing.T) {
	u, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dev, devPriv := newEd25519(t)
	chain, err := u.IssueDevice(dev, "laptop", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := devid.Signer(chain, devPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := identityRule.User(s.Credential, dev); err != nil || !bytes.Equal(got, u.PublicKey()) {
		t.Fatalf("linked device: user %x, %v; want %x", got, err, []byte(u.PublicKey()))
	}
	if got, err := identityRule.User(mls.NewBasicCredential(u.PublicKey()), u.PublicKey()); err != nil || !bytes.Equal(got, u.PublicKey()) {
		t.Fatalf("single device: user %x, %v", got, err)
	}
	forger, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forger.IssueDevice(dev, "stolen", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The forger's device certificate under the real user's certificate:
	// not issued by U.
	_, err = identityRule.User(mls.Credential{Type: mls.CredentialX509, Certificates: [][]byte{forged[0], chain[1]}}, dev)
	if !errors.Is(err, ErrIdentityMismatch) || !errors.Is(err, devid.ErrNotIssuedByUser) {
		t.Fatalf("forged chain: %v, want ErrIdentityMismatch and devid.ErrNotIssuedByUser", err)
	}
	if _, err := identityRule.User(s.Credential, u.PublicKey()); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("chain under another leaf key: %v", err)
	}
}

// TestLinkedIdentity: a new device stores the user key, its own key and
// the chain; its KeyPackages carry the x509 credential and speak for the
// user; it cannot export the identity (it does not hold it). A primary
// single-device identity issues a chain that verifies.
func TestLinkedIdentity(t *testing.T) {
	ctx := context.Background()
	primary := newStoreBackend(t, t.TempDir())
	if _, err := primary.Register(ctx); err != nil {
		t.Fatal(err)
	}
	user, self, err := primary.OwnKeys(ctx)
	if err != nil || !user.Equal(self) {
		t.Fatalf("single device: user %x device %x, %v", user, self, err)
	}
	dev, devPriv := newEd25519(t)
	chain, err := primary.IssueDevice(ctx, dev, "phone")
	if err != nil {
		t.Fatal(err)
	}

	linked := newStoreBackend(t, t.TempDir())
	if err := linked.SetLinkedIdentity(ctx, user, devPriv, chain, nil); err != nil {
		t.Fatal(err)
	}
	if err := linked.SetLinkedIdentity(ctx, user, devPriv, chain, nil); !errors.Is(err, ErrIdentityExists) {
		t.Fatalf("second SetLinkedIdentity: %v, want ErrIdentityExists", err)
	}
	u2, d2, err := linked.OwnKeys(ctx)
	if err != nil || !u2.Equal(user) || !d2.Equal(dev) {
		t.Fatalf("linked: user %x device %x, %v", u2, d2, err)
	}
	id, err := linked.identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := MLSKeyPackages{}.NewKeyPackage(mustSigner(t, id), 0, false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if info := inspectKeyPackage(identityRule, kb.KeyPackage, user, time.Now()); !info.Valid {
		t.Fatalf("linked device's KeyPackage as the user's: %v", info.Err)
	}
	kp, _ := mls.ParseKeyPackage(kb.KeyPackage)
	if kp.LeafNode.Credential.Type != mls.CredentialX509 || !bytes.Equal(kp.LeafNode.SignatureKey, dev) {
		t.Fatalf("linked KeyPackage credential %v key %x", kp.LeafNode.Credential.Type, kp.LeafNode.SignatureKey)
	}
	if _, err := linked.IssueDevice(ctx, dev, "x"); !errors.Is(err, ErrNotPrimaryDevice) {
		t.Fatalf("linked IssueDevice: %v, want ErrNotPrimaryDevice", err)
	}
	if _, _, err := linked.ExportIdentity(ctx, []byte("a long enough passphrase here")); !errors.Is(err, ErrNotPrimaryDevice) {
		t.Fatalf("linked export: %v, want ErrNotPrimaryDevice", err)
	}

	// A chain for another device key, or another user, is refused.
	_, other := newEd25519(t)
	if err := newStoreBackend(t, t.TempDir()).SetLinkedIdentity(ctx, user, other, chain, nil); !errors.Is(err, ErrInvalidArgument) || !errors.Is(err, devid.ErrWrongKey) {
		t.Fatalf("chain of another device: %v", err)
	}
	stranger, _ := newEd25519(t)
	if err := newStoreBackend(t, t.TempDir()).SetLinkedIdentity(ctx, stranger, devPriv, chain, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("chain of another user: %v", err)
	}
}

// TestSingleDeviceSigner: the single-device identity keeps its basic
// credential (what every group made before devices holds) and advertises
// x509 so that linked devices can join its groups.
func TestSingleDeviceSigner(t *testing.T) {
	_, priv := newEd25519(t)
	s := testSigner(priv)
	if s.Credential.Type != mls.CredentialBasic || !bytes.Equal(s.Credential.Identity, s.SignaturePub) {
		t.Fatalf("credential %+v", s.Credential)
	}
	kb, err := MLSKeyPackages{}.NewKeyPackage(s, 0, false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := mls.ParseKeyPackage(kb.KeyPackage)
	if !slices.Contains(kp.LeafNode.Capabilities.Credentials, mls.CredentialX509) {
		t.Fatal("single-device KeyPackage does not advertise x509")
	}
}

// TestForgedDeviceInCommitRefused: a commit that adds a leaf whose device
// certificate the user's identity key did not issue is refused by a
// member under qpd's policy (a trust-policy refusal naming the devid
// reason); a genuine device's Add goes through.
func TestForgedDeviceInCommitRefused(t *testing.T) {
	_, ap := newEd25519(t)
	_, bp := newEd25519(t)
	as, bs := testSigner(ap), testSigner(bp)
	creator, err := mls.CreateGroup(DefaultCipherSuite, bytes.Repeat([]byte{9}, 16), as, &mls.CreateOptions{Config: groupConfig})
	if err != nil {
		t.Fatal(err)
	}
	bkp, bpriv, err := mls.GenerateKeyPackage(DefaultCipherSuite, bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := creator.AddMembers([]*mls.KeyPackage{bkp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creator.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	member, err := mls.JoinFromWelcome(res.Welcome, bpriv, &mls.JoinOptions{Config: groupConfig, Policy: groupPolicy})
	if err != nil {
		t.Fatal(err)
	}

	u, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forger, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dev, devPriv := newEd25519(t)
	forged, err := forger.IssueDevice(dev, "forged", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := u.IssueDevice(dev, "genuine", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	kpOf := func(chain [][]byte) *mls.KeyPackage {
		s, err := devid.Signer(chain, devPriv)
		if err != nil {
			t.Fatal(err)
		}
		kp, _, err := mls.GenerateKeyPackage(DefaultCipherSuite, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	bad, err := creator.AddMembers([]*mls.KeyPackage{kpOf([][]byte{forged[0], genuine[1]})}, nil)
	if err != nil {
		t.Skipf("the creator's library refuses the forged Add itself: %v", err)
	}
	_, err = member.ProcessMessage(bad.Message)
	if !isRefusal(err) || !errors.Is(err, devid.ErrNotIssuedByUser) {
		t.Fatalf("commit adding a forged device: %v, want a trust-policy refusal with devid.ErrNotIssuedByUser", err)
	}
	if err := creator.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	good, err := creator.AddMembers([]*mls.KeyPackage{kpOf(genuine)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := member.ProcessMessage(good.Message); err != nil {
		t.Fatalf("commit adding a genuine device: %v", err)
	}
}

// TestDeviceListChecked: the device list the node hands out for a person
// counts only when signed by that person's user key; none published is
// the person's key alone.
func TestDeviceListChecked(t *testing.T) {
	user, userPriv := newEd25519(t)
	other, otherPriv := newEd25519(t)
	dev, _ := newEd25519(t)
	sign := func(u ed25519.PublicKey, priv ed25519.PrivateKey) []byte {
		raw, err := (&devid.DeviceList{User: u, Version: 1, Devices: []ed25519.PublicKey{u, dev}}).Sign(priv)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	l, err := deviceList(user, sign(user, userPriv))
	if err != nil || !l.Has(dev) || !l.Has(user) {
		t.Fatalf("user's own list: %+v, %v", l, err)
	}
	if l, err := deviceList(user, nil); err != nil || len(l.Devices) != 1 || !l.Has(user) {
		t.Fatalf("no list: %+v, %v", l, err)
	}
	// Another user's list, however well signed.
	if _, err := deviceList(user, sign(other, otherPriv)); !errors.Is(err, ErrDeviceList) || !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("another user's list: %v", err)
	}
	// The user's list re-signed by someone else.
	forged := sign(user, userPriv)
	sig := ed25519.Sign(otherPriv, forged[:len(forged)-ed25519.SignatureSize])
	copy(forged[len(forged)-ed25519.SignatureSize:], sig)
	if _, err := deviceList(user, forged); !errors.Is(err, ErrDeviceList) || !errors.Is(err, devid.ErrListSignature) {
		t.Fatalf("list not signed by the user: %v", err)
	}
}
