package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// A person at the node: the first device is the user key U (a basic
// credential, as every identity made before devices), further devices
// have their own keys certified by U (x509 credentials).
type devUser struct {
	user    *devid.User
	primary *grouptest.Member // D == U
	version uint64
}

// newDevUser makes a user registered at n (on its own: the node's policy
// in these tests registers nobody new, so only the store can).
func newDevUser(t *testing.T, n *testNode) *devUser {
	t.Helper()
	u, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := grouptest.MemberOf(u.Key)
	m.Signer.CredentialTypes = []mls.CredentialType{mls.CredentialX509}
	if err := n.store.Register(testCtx(t), u.PublicKey()); err != nil {
		t.Fatal(err)
	}
	m.Conn = n.dial(t, m.Priv)
	return &devUser{user: u, primary: m}
}

// newDevice makes a device of u (not yet listed) connected to n, with a
// certificate issued by issuer (u itself unless forging).
func newDevice(t *testing.T, n *testNode, u *devid.User, issuer *devid.User) *grouptest.Member {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := issuer.IssueDevice(pub, "laptop", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if issuer != u {
		chain[1] = u.Certificate // claim u's user certificate
	}
	s, err := devid.Signer(chain, priv)
	if err != nil {
		t.Fatal(err)
	}
	m := &grouptest.Member{Pub: pub, Priv: priv, Signer: s}
	m.Conn = n.dial(t, priv)
	return m
}

// list signs a device list of u at the next version.
func (u *devUser) list(t *testing.T, devices ...ed25519.PublicKey) []byte {
	t.Helper()
	u.version++
	l := &devid.DeviceList{User: u.user.PublicKey(), Version: u.version, Devices: devices, Created: time.Now()}
	b, err := l.Sign(u.user.Key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (u *devUser) publish(t *testing.T, devices ...ed25519.PublicKey) {
	t.Helper()
	v, err := u.primary.Conn.PublishDevices(testCtx(t), u.list(t, devices...))
	if err != nil || v != u.version {
		t.Fatalf("PublishDevices v%d: %d, %v", u.version, v, err)
	}
}

func kpBytes(t *testing.T, m *grouptest.Member) []byte {
	t.Helper()
	return m.KeyPackage(t).Marshal()
}

func startDeviceNode(t *testing.T, cfg server.Config) *testNode {
	t.Helper()
	cfg.Registration = server.RegistrationClosed
	return startTestNode(t, cfg, store.Limits{})
}

// A published list: fetched as stored, versions only grow, a list not
// signed by its user is refused, and listed devices count as registered
// (they enqueue and upload without registering themselves).
func TestDeviceListPublish(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	laptop := newDevice(t, n, alice.user, alice.user)
	U := alice.user.PublicKey()

	got, err := alice.primary.Conn.FetchDevices(ctx, U)
	if err != nil || got != nil {
		t.Fatalf("FetchDevices before a list: %x, %v", got, err)
	}
	_, _, err = laptop.Conn.Enqueue(ctx, U, []byte("hi"), nil)
	wantErr(t, "unlisted device enqueues", err, client.ErrNotRegistered)
	wantErr(t, "unlisted device uploads", uploadErr(t, laptop), client.ErrNotRegistered)

	signed := alice.list(t, U, laptop.Pub)
	if v, err := alice.primary.Conn.PublishDevices(ctx, signed); err != nil || v != 1 {
		t.Fatalf("PublishDevices: %d, %v", v, err)
	}
	got, err = laptop.Conn.FetchDevices(ctx, U)
	if err != nil || !bytes.Equal(got, signed) {
		t.Fatalf("FetchDevices: %v", err)
	}
	if _, _, err := laptop.Conn.Enqueue(ctx, U, []byte("hi"), nil); err != nil {
		t.Fatalf("listed device enqueues: %v", err)
	}
	if err := uploadErr(t, laptop); err != nil {
		t.Fatalf("listed device uploads its x509 KeyPackage: %v", err)
	}

	// The same version again, an older one: refused, the list stays.
	_, err = alice.primary.Conn.PublishDevices(ctx, signed)
	wantErr(t, "same version", err, client.ErrInvalidArgument)
	alice.version = 0
	_, err = alice.primary.Conn.PublishDevices(ctx, alice.list(t, U))
	wantErr(t, "older version", err, client.ErrInvalidArgument)
	alice.version = 1

	// Mallory signs a list for alice's key: refused, whoever sends it.
	mallory := newDevUser(t, n)
	forged := &devid.DeviceList{User: U, Version: 9, Devices: []ed25519.PublicKey{mallory.user.PublicKey()}}
	body, err := (&devid.DeviceList{User: mallory.user.PublicKey(), Version: 9, Devices: forged.Devices}).Sign(mallory.user.Key)
	if err != nil {
		t.Fatal(err)
	}
	copy(body[1:33], U) // alice's name on mallory's signature
	_, err = mallory.primary.Conn.PublishDevices(ctx, body)
	wantErr(t, "list with a bad signature", err, client.ErrUnauthorized)
	_, err = mallory.primary.Conn.PublishDevices(ctx, []byte("garbage"))
	wantErr(t, "garbage list", err, client.ErrInvalidArgument)
	got, _ = laptop.Conn.FetchDevices(ctx, U)
	if !bytes.Equal(got, signed) {
		t.Fatal("a refused list replaced alice's")
	}

	// A user may not list someone else's identity, nor another user's
	// device: dropping it later would revoke it.
	bob := newDevUser(t, n)
	_, err = mallory.primary.Conn.PublishDevices(ctx, mallory.list(t, mallory.user.PublicKey(), bob.user.PublicKey()))
	wantErr(t, "listing bob's identity", err, client.ErrUnauthorized)
	_, err = mallory.primary.Conn.PublishDevices(ctx, mallory.list(t, mallory.user.PublicKey(), laptop.Pub))
	wantErr(t, "listing alice's device", err, client.ErrUnauthorized)

	// Anyone authenticated may carry a list the user signed (a restored
	// device publishes with a key the node does not know yet).
	restored := newDevice(t, n, alice.user, alice.user)
	if _, err := restored.Conn.PublishDevices(ctx, alice.list(t, U, laptop.Pub, restored.Pub)); err != nil {
		t.Fatalf("a new device publishes its user's list: %v", err)
	}
	checkServingDevices(t, n)
}

func uploadErr(t *testing.T, m *grouptest.Member) error {
	t.Helper()
	_, err := m.Conn.UploadKeyPackage(testCtx(t), m.Pub, kpBytes(t, m), false)
	return err
}

// fetchUserKeyPackages returns one KeyPackage per device of the list (the
// implicit list {U} without one), consumed; a device without packages is
// left out.
func TestFetchUserKeyPackages(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	U := alice.user.PublicKey()
	bob := newDevUser(t, n)
	if err := uploadErr(t, alice.primary); err != nil {
		t.Fatal(err)
	}
	pkgs, list, err := bob.primary.Conn.FetchUserKeyPackages(ctx, U, false)
	if err != nil || list != nil || len(pkgs) != 1 || !bytes.Equal(pkgs[0].Device, U) {
		t.Fatalf("implicit list: %d packages, list %x, %v", len(pkgs), list, err)
	}

	laptop := newDevice(t, n, alice.user, alice.user)
	phone := newDevice(t, n, alice.user, alice.user)
	alice.publish(t, U, laptop.Pub, phone.Pub)
	for _, m := range []*grouptest.Member{alice.primary, laptop} {
		for range 2 {
			if err := uploadErr(t, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	pkgs, list, err = bob.primary.Conn.FetchUserKeyPackages(ctx, U, false)
	if err != nil {
		t.Fatal(err)
	}
	l, err := devid.ParseDeviceList(list)
	if err != nil || !l.User.Equal(U) || len(l.Devices) != 3 {
		t.Fatalf("list: %v", err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("%d packages, want 2 (the phone has none)", len(pkgs))
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		kp, err := mls.ParseKeyPackage(p.Package)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(kp.LeafNode.SignatureKey, p.Device) || !l.Has(p.Device) || seen[string(p.Device)] || p.Peeked {
			t.Fatalf("package for %x: key %x", p.Device, kp.LeafNode.SignatureKey)
		}
		seen[string(p.Device)] = true
		if user, err := (devid.Rule{}).User(&kp.LeafNode.Credential, kp.LeafNode.SignatureKey); err != nil || !user.Equal(U) {
			t.Fatalf("package of %x speaks for %x: %v", p.Device, user, err)
		}
	}
	for _, m := range []*grouptest.Member{alice.primary, laptop} {
		c, err := m.Conn.KeyPackageCount(ctx, m.Pub)
		if err != nil || c.Remaining != 1 {
			t.Fatalf("left after one fetch: %+v, %v", c, err)
		}
	}
	// A peek returns each device's last-resort package and consumes
	// nothing; a device without one is left out.
	if _, err := alice.primary.Conn.UploadKeyPackage(ctx, U, kpBytes(t, alice.primary), true); err != nil {
		t.Fatal(err)
	}
	pkgs, _, err = bob.primary.Conn.FetchUserKeyPackages(ctx, U, true)
	if err != nil || len(pkgs) != 1 || !bytes.Equal(pkgs[0].Device, U) || !pkgs[0].Peeked {
		t.Fatalf("peek: %+v, %v", pkgs, err)
	}
	if c, err := laptop.Conn.KeyPackageCount(ctx, laptop.Pub); err != nil || c.Remaining != 1 {
		t.Fatalf("a peek consumed: %+v, %v", c, err)
	}
	_, _, err = bob.primary.Conn.FetchUserKeyPackages(ctx, make([]byte, 31), false)
	wantErr(t, "short user key", err, client.ErrInvalidArgument)
}

// An x509 KeyPackage is taken only from its own device, listed by the user
// that issued its certificate: a certificate not issued by the user's key,
// a device not (or no longer) in the list, another device's package are
// refused. Basic packages are as before.
func TestDeviceKeyPackageUploadChecks(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	mallory := newDevUser(t, n)
	U := alice.user.PublicKey()
	laptop := newDevice(t, n, alice.user, alice.user)
	forged := newDevice(t, n, alice.user, mallory.user) // signed by mallory, names alice's user certificate
	unlisted := newDevice(t, n, alice.user, alice.user)
	alice.publish(t, U, laptop.Pub, forged.Pub)

	wantErr(t, "certificate not issued by the user", uploadErr(t, forged), client.ErrUnauthorized)
	if err := uploadErr(t, laptop); err != nil {
		t.Fatalf("listed device: %v", err)
	}
	// unlisted is not registered at all; list it for another user's
	// registration and it still is not in alice's list.
	if _, err := mallory.primary.Conn.PublishDevices(ctx, mallory.list(t, mallory.user.PublicKey(), unlisted.Pub)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "device not in its user's list", uploadErr(t, unlisted), client.ErrUnauthorized)
	_, err := laptop.Conn.UploadKeyPackage(ctx, laptop.Pub, kpBytes(t, unlisted), false)
	wantErr(t, "another device's package", err, client.ErrUnauthorized)
	_, err = unlisted.Conn.UploadKeyPackage(ctx, laptop.Pub, kpBytes(t, laptop), false)
	wantErr(t, "for another identity", err, client.ErrUnauthorized)
	if err := uploadErr(t, alice.primary); err != nil {
		t.Fatalf("basic package of the first device: %v", err)
	}
	checkServingDevices(t, n)
}

// Revoking: the list without a device revokes it for ever. Its open
// connection is closed, every later call (ping, receive, enqueue,
// upload) fails with revoked, its queue and KeyPackages are gone, nobody
// can enqueue to it, and it cannot be listed again.
func TestDeviceRevoked(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	bob := newDevUser(t, n)
	U := alice.user.PublicKey()
	laptop := newDevice(t, n, alice.user, alice.user)
	alice.publish(t, U, laptop.Pub)
	if err := uploadErr(t, laptop); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := bob.primary.Conn.Enqueue(ctx, laptop.Pub, []byte{'m', byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	old := laptop.Conn

	alice.publish(t, U)
	select {
	case <-old.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked device's connection stays open")
	}
	c := n.dial(t, laptop.Priv)
	_, err := c.Ping(ctx)
	wantErr(t, "ping", err, client.ErrRevoked)
	_, err = c.Receive(ctx, laptop.Pub, 0, 10)
	wantErr(t, "receive", err, client.ErrRevoked)
	_, _, err = c.Enqueue(ctx, U, []byte("still me"), nil)
	wantErr(t, "enqueue", err, client.ErrRevoked)
	_, err = c.UploadKeyPackage(ctx, laptop.Pub, kpBytes(t, laptop), false)
	wantErr(t, "upload", err, client.ErrRevoked)
	_, err = c.PublishDevices(ctx, alice.list(t, U, laptop.Pub))
	wantErr(t, "publish", err, client.ErrRevoked)
	alice.version--

	msgs, err := n.store.Receive(ctx, laptop.Pub, 0, 10)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("revoked device's queue: %d messages, %v", len(msgs), err)
	}
	if kc, err := n.store.CountKeyPackages(ctx, laptop.Pub); err != nil || kc.Remaining != 0 || kc.LastResort {
		t.Fatalf("revoked device's KeyPackages: %+v, %v", kc, err)
	}
	_, _, err = bob.primary.Conn.Enqueue(ctx, laptop.Pub, []byte("late"), nil)
	wantErr(t, "enqueue to a revoked device", err, client.ErrUnknownRecipient)
	pkgs, _, err := bob.primary.Conn.FetchUserKeyPackages(ctx, U, false)
	if err != nil || len(pkgs) != 0 {
		t.Fatalf("packages of alice after the revocation: %d, %v", len(pkgs), err)
	}
	_, err = alice.primary.Conn.PublishDevices(ctx, alice.list(t, U, laptop.Pub))
	wantErr(t, "listing a revoked device again", err, client.ErrRevoked)
	// The user and other devices go on.
	if _, _, err := alice.primary.Conn.Enqueue(ctx, bob.user.PublicKey(), []byte("hi"), nil); err != nil {
		t.Fatalf("alice after revoking a device: %v", err)
	}
	checkServingDevices(t, n)
}

// A public view takes leaves by devid.Rule: a group made by a device with
// a forged certificate is refused, a commit adding a forged device or a
// revoked one is refused, while a real device of the user joins; rosters
// and deliveries are by device key.
func TestDeviceLeavesInGroups(t *testing.T) {
	n := startDeviceNode(t, server.Config{})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	mallory := newDevUser(t, n)
	U := alice.user.PublicKey()
	laptop := newDevice(t, n, alice.user, alice.user)
	phone := newDevice(t, n, alice.user, alice.user)
	forged := newDevice(t, n, alice.user, mallory.user)
	alice.publish(t, U, laptop.Pub, phone.Pub, forged.Pub)

	// GroupInfo: the forged device creates a group.
	g, err := mls.CreateGroup(grouptest.Suite, nil, forged.Signer, &mls.CreateOptions{Config: grouptest.Config})
	if err != nil {
		t.Fatal(err)
	}
	gi, err := g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "GroupInfo with a forged device certificate", forged.Conn.CreateGroup(ctx, gi), client.ErrUnauthorized)

	// Commits: alice adds her laptop (accepted), then the forged device
	// (refused).
	gid := alice.primary.Create(t)
	alice.primary.Add(t, laptop)
	// The roster is by device key: the laptop is a member on its own.
	st, err := laptop.Conn.GroupState(ctx, gid)
	if err != nil || st.Members != 2 {
		t.Fatalf("group state: %+v, %v", st, err)
	}
	_, err = phone.Conn.GroupState(ctx, gid)
	wantErr(t, "alice's other device is no member", err, client.ErrUnauthorized)
	refuseAdd := func(what string, kp *mls.KeyPackage) {
		t.Helper()
		res, err := alice.primary.Group.AddMembers([]*mls.KeyPackage{kp}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = alice.primary.Conn.SubmitCommit(ctx, client.CommitRequest{Message: res.Message, Welcome: res.Welcome})
		wantErr(t, what, err, client.ErrInvalidCommit)
		if err := alice.primary.Group.DiscardPendingCommit(); err != nil {
			t.Fatal(err)
		}
	}
	refuseAdd("commit adding a forged device", forged.KeyPackage(t))
	phoneKP := phone.KeyPackage(t)
	alice.publish(t, U, laptop.Pub)
	refuseAdd("commit adding a revoked device", phoneKP)
	// The group goes on.
	st, err = laptop.Conn.GroupState(ctx, gid)
	if err != nil || st.Epoch != alice.primary.Group.Epoch() {
		t.Fatalf("group after refusals: %+v, %v", st, err)
	}
	checkServingDevices(t, n)
}

// Link slots: only a registered identity opens one (at most
// MaxLinkSlots); anyone authenticated puts the request, once; only the
// opener reads it, puts the response (once) and closes the slot; a
// stranger can do neither; slots expire.
func TestLinkSlots(t *testing.T) {
	n := startDeviceNode(t, server.Config{LinkTTL: 2 * time.Second})
	ctx := testCtx(t)
	alice := newDevUser(t, n)
	opener := alice.primary.Conn
	newDev := newTestIdentity(t)
	dev := n.dial(t, newDev.priv)
	stranger := n.dial(t, newTestIdentity(t).priv)
	slot := make([]byte, 32)
	rand.Read(slot)

	wantErr(t, "unregistered opens", dev.LinkOpen(ctx, slot), client.ErrNotRegistered)
	wantErr(t, "short slot", opener.LinkOpen(ctx, slot[:16]), client.ErrInvalidArgument)
	wantErr(t, "put before open", dev.LinkPut(ctx, slot, client.LinkRequest, []byte("req")), client.ErrInvalidArgument)
	if err := opener.LinkOpen(ctx, slot); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "open twice", opener.LinkOpen(ctx, slot), client.ErrInvalidArgument)
	if got, err := opener.LinkGet(ctx, slot, client.LinkRequest); err != nil || got != nil {
		t.Fatalf("empty request box: %q, %v", got, err)
	}
	wantErr(t, "stranger puts the response", stranger.LinkPut(ctx, slot, client.LinkResponse, []byte("resp")), client.ErrUnauthorized)
	wantErr(t, "too large", dev.LinkPut(ctx, slot, client.LinkRequest, make([]byte, server.DefaultMaxLinkPayload+1)), client.ErrTooLarge)
	wantErr(t, "empty", dev.LinkPut(ctx, slot, client.LinkRequest, nil), client.ErrInvalidArgument)
	wantErr(t, "box 2", dev.LinkPut(ctx, slot, 2, []byte("x")), client.ErrInvalidArgument)
	if err := dev.LinkPut(ctx, slot, client.LinkRequest, []byte("request")); err != nil {
		t.Fatalf("new device puts the request: %v", err)
	}
	wantErr(t, "second request", stranger.LinkPut(ctx, slot, client.LinkRequest, []byte("mine")), client.ErrUnauthorized)
	_, err := stranger.LinkGet(ctx, slot, client.LinkRequest)
	wantErr(t, "stranger reads the request", err, client.ErrUnauthorized)
	_, err = dev.LinkGet(ctx, slot, client.LinkRequest)
	wantErr(t, "requester reads box 0", err, client.ErrUnauthorized)
	if got, err := opener.LinkGet(ctx, slot, client.LinkRequest); err != nil || string(got) != "request" {
		t.Fatalf("opener reads the request: %q, %v", got, err)
	}
	if got, err := dev.LinkGet(ctx, slot, client.LinkResponse); err != nil || got != nil {
		t.Fatalf("empty response box: %q, %v", got, err)
	}
	if err := opener.LinkPut(ctx, slot, client.LinkResponse, []byte("response")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second response", opener.LinkPut(ctx, slot, client.LinkResponse, []byte("again")), client.ErrUnauthorized)
	if got, err := dev.LinkGet(ctx, slot, client.LinkResponse); err != nil || string(got) != "response" {
		t.Fatalf("new device reads the response: %q, %v", got, err)
	}
	wantErr(t, "stranger closes", stranger.LinkClose(ctx, slot), client.ErrInvalidArgument)
	if err := opener.LinkClose(ctx, slot); err != nil {
		t.Fatal(err)
	}
	_, err = dev.LinkGet(ctx, slot, client.LinkResponse)
	wantErr(t, "closed slot", err, client.ErrInvalidArgument)

	// The cap per identity.
	var slots [][]byte
	for range server.DefaultMaxLinkSlots {
		s := make([]byte, 32)
		rand.Read(s)
		if err := opener.LinkOpen(ctx, s); err != nil {
			t.Fatal(err)
		}
		slots = append(slots, s)
	}
	extra := make([]byte, 32)
	rand.Read(extra)
	wantErr(t, "slot past the cap", opener.LinkOpen(ctx, extra), client.ErrLimit)
	if err := opener.LinkClose(ctx, slots[0]); err != nil {
		t.Fatal(err)
	}
	if err := opener.LinkOpen(ctx, extra); err != nil {
		t.Fatalf("after a close: %v", err)
	}

	// Expiry (LinkTTL is 2 s here): the slot goes with its boxes.
	if err := dev.LinkPut(ctx, slots[1], client.LinkRequest, []byte("request")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := opener.LinkGet(ctx, slots[1], client.LinkRequest)
		if errors.Is(err, client.ErrInvalidArgument) {
			break
		}
		if err != nil {
			t.Fatalf("get before expiry: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot never expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantErr(t, "put into an expired slot", dev.LinkPut(ctx, slots[1], client.LinkResponse, []byte("x")), client.ErrInvalidArgument)
	if err := opener.LinkOpen(ctx, slots[1]); err != nil {
		t.Fatalf("an expired slot's id opens again: %v", err)
	}
	checkServingDevices(t, n)
}

// checkServingDevices is checkServing on a node that registers nobody
// new: a registered identity can still use it.
func checkServingDevices(t *testing.T, n *testNode) {
	t.Helper()
	u := newDevUser(t, n)
	if _, _, err := u.primary.Conn.Enqueue(testCtx(t), u.user.PublicKey(), []byte("still here"), nil); err != nil {
		t.Fatalf("node stopped serving: %v", err)
	}
}

// With several nodes on one PostgreSQL database, a device revoked through
// node A is refused by node B within the recheck time (2 s), and A refuses
// to enqueue to it at once.
func TestDeviceRevokedAcrossNodes(t *testing.T) {
	conn := pgtest.NewDatabase(t)
	a, b := startPostgresNode(t, conn), startPostgresNode(t, conn)
	ctx := testCtx(t)
	u, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	U := u.PublicKey()
	ua := a.dial(t, u.Key)
	dpub, dpriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db := b.dial(t, dpriv)
	sign := func(v uint64, devices ...ed25519.PublicKey) []byte {
		l, err := (&devid.DeviceList{User: U, Version: v, Devices: devices}).Sign(u.Key)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if _, err := ua.PublishDevices(ctx, sign(1, U, dpub)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Ping(ctx); err != nil {
		t.Fatalf("listed device on B: %v", err)
	}
	if _, err := ua.PublishDevices(ctx, sign(2, U)); err != nil {
		t.Fatal(err)
	}
	_, _, err = ua.Enqueue(ctx, dpub, []byte("late"), nil)
	wantErr(t, "enqueue through A to the revoked device", err, client.ErrUnknownRecipient)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := db.Ping(ctx)
		if errors.Is(err, client.ErrRevoked) {
			break
		}
		if err != nil {
			t.Fatalf("ping on B: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("node B still serves the revoked device")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
