package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/link"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// The link exchange against a real node, each side played by the test
// where it must be hostile: a primary that answers with something the new
// device must refuse, and a new device whose request the primary must
// refuse.

// hostilePrimary is a registered node connection of user u that opens a
// slot for a fresh code and answers the first request with what answer
// makes of it.
func hostilePrimary(t *testing.T, node *testnode.Node, u *devid.User, answer func(keys *link.Keys, req *link.Request) []byte) (code string) {
	t.Helper()
	c := pipelinePeer(t, node, u.Key)
	s, err := link.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := link.Derive(s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := c.LinkOpen(ctx, keys.Slot[:]); err != nil {
		t.Fatal(err)
	}
	// The node keeps few open slots per identity.
	t.Cleanup(func() { c.LinkClose(context.Background(), keys.Slot[:]) })
	go func() {
		sealed, err := pollBox(ctx, c, keys.Slot[:], link.BoxRequest)
		if err != nil {
			return
		}
		pt, err := keys.Open(link.BoxRequest, sealed)
		if err != nil {
			t.Errorf("hostile primary: open request: %v", err)
			return
		}
		req, err := link.ParseRequest(keys, pt)
		if err != nil {
			t.Errorf("hostile primary: parse request: %v", err)
			return
		}
		if err := c.LinkPut(ctx, keys.Slot[:], link.BoxResponse, answer(keys, req)); err != nil {
			t.Errorf("hostile primary: put response: %v", err)
		}
	}()
	return s.String()
}

// startLinkNode starts a node for the link tests.
func startLinkNode(t *testing.T) *testnode.Node {
	t.Helper()
	return testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
}

func newLinkUser(t *testing.T) *devid.User {
	t.Helper()
	u, err := devid.GenerateUser(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sealResponse is the response a primary of u would send for req, with
// mutate applied before it is sealed under keys.
func sealResponse(t *testing.T, keys *link.Keys, u *devid.User, req *link.Request, mutate func(r *link.Response)) []byte {
	t.Helper()
	chain, err := u.IssueDevice(req.Device, req.Name, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &devid.DeviceList{User: u.PublicKey(), Version: 1, Devices: []ed25519.PublicKey{u.PublicKey(), req.Device}, Created: time.Now()}
	signed, err := l.Sign(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	bob, _, _ := ed25519.GenerateKey(rand.Reader)
	r := &link.Response{User: u.PublicKey(), Chain: chain, DeviceList: signed, Contacts: []link.Contact{{Name: "bob", Key: bob}}}
	if mutate != nil {
		mutate(r)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal(link.BoxResponse, b)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// checkNothingStored: a refused link leaves the state without identity
// and contacts.
func checkNothingStored(t *testing.T, b *Backend) {
	t.Helper()
	if _, err := b.identity(context.Background()); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("identity after a refused link: %v", err)
	}
	err := b.view(context.Background(), func(tx *store.Tx) error {
		cs, err := tx.Contacts()
		if len(cs) != 0 {
			t.Errorf("contacts after a refused link: %+v", cs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAcceptLinkRefusesHostileResponses(t *testing.T) {
	node := startLinkNode(t)
	u := newLinkUser(t)
	mallory := newLinkUser(t)
	for _, c := range []struct {
		name   string
		answer func(t *testing.T, keys *link.Keys, req *link.Request) []byte
		want   error
	}{
		{"tampered", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			s := sealResponse(t, keys, u, req, nil)
			s[len(s)-5] ^= 0x40
			return s
		}, link.ErrSealed},
		{"sealed under another code", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			other, _ := link.NewCode()
			ok, _ := link.Derive(other)
			return sealResponse(t, ok, u, req, nil)
		}, link.ErrSealed},
		{"garbage", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			g := make([]byte, 300)
			rand.Read(g)
			return g
		}, link.ErrSealed},
		{"chain issued by another key", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			return sealResponse(t, keys, u, req, func(r *link.Response) {
				r.Chain, _ = mallory.IssueDevice(req.Device, "x", time.Now(), 0)
			})
		}, link.ErrWrongUser},
		{"another user's whole identity under this user's name", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			return sealResponse(t, keys, mallory, req, func(r *link.Response) { r.User = u.PublicKey() })
		}, link.ErrWrongUser},
		{"chain for another device", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			other, _, _ := ed25519.GenerateKey(rand.Reader)
			return sealResponse(t, keys, u, req, func(r *link.Response) { r.Chain, _ = u.IssueDevice(other, "x", time.Now(), 0) })
		}, link.ErrWrongUser},
		{"list without the device", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			return sealResponse(t, keys, u, req, func(r *link.Response) {
				l := &devid.DeviceList{User: u.PublicKey(), Version: 1, Devices: []ed25519.PublicKey{u.PublicKey()}}
				r.DeviceList, _ = l.Sign(u.Key)
			})
		}, link.ErrWrongUser},
		{"list signed by another user", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			return sealResponse(t, keys, u, req, func(r *link.Response) {
				l := &devid.DeviceList{User: mallory.PublicKey(), Version: 1, Devices: []ed25519.PublicKey{req.Device}}
				r.DeviceList, _ = l.Sign(mallory.Key)
			})
		}, link.ErrWrongUser},
		{"list that does not parse", func(t *testing.T, keys *link.Keys, req *link.Request) []byte {
			return sealResponse(t, keys, u, req, func(r *link.Response) { r.DeviceList = []byte{1, 2, 3} })
		}, link.ErrWrongUser},
	} {
		t.Run(c.name, func(t *testing.T) {
			code := hostilePrimary(t, node, u, func(keys *link.Keys, req *link.Request) []byte { return c.answer(t, keys, req) })
			b := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := b.AcceptLink(ctx, code, "phone", 10*time.Second)
			if !errors.Is(err, ErrLink) || !errors.Is(err, c.want) {
				t.Fatalf("AcceptLink = %v, want ErrLink and %v", err, c.want)
			}
			checkNothingStored(t, b)
		})
	}
}

func TestAcceptLinkWrongAndUsedCodes(t *testing.T) {
	node := startLinkNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newDevice := func() *Backend {
		return backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}})
	}
	// Not a code at all.
	b := newDevice()
	if _, err := b.AcceptLink(ctx, "qpq-link-nope", "", time.Second); !errors.Is(err, link.ErrCode) {
		t.Errorf("malformed code: %v, want link.ErrCode", err)
	}
	// A well-formed code nobody opened: nothing answers.
	s, _ := link.NewCode()
	start := time.Now()
	if _, err := b.AcceptLink(ctx, s.String(), "", 2*time.Second); !errors.Is(err, ErrLink) {
		t.Errorf("unopened code: %v, want ErrLink", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("unopened code took %v", time.Since(start))
	}
	checkNothingStored(t, b)

	// A second request on a used code: the node takes one request per
	// slot, so the second device fails at once and the primary sees only
	// the first.
	u := newLinkUser(t)
	requests := make(chan *link.Request, 2)
	code := hostilePrimary(t, node, u, func(keys *link.Keys, req *link.Request) []byte {
		requests <- req
		return sealResponse(t, keys, u, req, func(r *link.Response) { r.Chain = nil; r.Chain = [][]byte{{1}, {2}} })
	})
	first := newDevice()
	firstDone := make(chan error, 1)
	go func() { _, err := first.AcceptLink(ctx, code, "first", 20*time.Second); firstDone <- err }()
	select {
	case <-requests:
	case <-time.After(20 * time.Second):
		t.Fatal("the primary saw no request")
	}
	second := newDevice()
	if _, err := second.AcceptLink(ctx, code, "second", 3*time.Second); !errors.Is(err, ErrLink) {
		t.Errorf("second request on a used code: %v, want ErrLink", err)
	}
	checkNothingStored(t, second)
	if err := <-firstDone; !errors.Is(err, ErrLink) {
		t.Errorf("first device, answered with a broken chain: %v", err)
	}
	checkNothingStored(t, first)
	select {
	case r := <-requests:
		t.Errorf("the primary saw a second request: %+v", r)
	default:
	}
}

// linkPrimary is a registered, connected daemon: a primary device.
func linkPrimary(t *testing.T, node *testnode.Node) (*Backend, ed25519.PublicKey) {
	t.Helper()
	b := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}, Groups: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r, err := b.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pipelineWait(t, "connected", func() bool { return b.Connection().State == StateConnected })
	return b, r.Identity
}

// newDeviceSide plays the new device against a Link: it reads the code
// from the first step, puts the request made by request, and returns what
// the primary answered (nil if nothing within the wait).
func newDeviceSide(t *testing.T, node *testnode.Node, request func(keys *link.Keys, dev ed25519.PrivateKey) []byte) (step func(LinkStep) error, answer <-chan []byte, dev ed25519.PrivateKey, keysOut <-chan *link.Keys) {
	_, dev, _ = ed25519.GenerateKey(rand.Reader)
	ans := make(chan []byte, 1)
	kc := make(chan *link.Keys, 1)
	step = func(s LinkStep) error {
		if s.Code == "" {
			return nil
		}
		sec, err := link.ParseCode(s.Code)
		if err != nil {
			t.Errorf("code %q: %v", s.Code, err)
			return err
		}
		keys, _ := link.Derive(sec)
		kc <- keys
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := nodeclient.Dial(ctx, node.Addr, nodeclient.Config{Identity: dev, PinnedCert: node.CertDER})
			if err != nil {
				t.Errorf("new device dial: %v", err)
				ans <- nil
				return
			}
			defer c.Close()
			if err := c.LinkPut(ctx, keys.Slot[:], link.BoxRequest, request(keys, dev)); err != nil {
				t.Errorf("new device put: %v", err)
				ans <- nil
				return
			}
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			defer wcancel()
			p, _ := pollBox(wctx, c, keys.Slot[:], link.BoxResponse)
			ans <- p
		}()
		return nil
	}
	return step, ans, dev, kc
}

func TestLinkPrimaryCertifiesAndPublishes(t *testing.T) {
	// The test's new device uploads no KeyPackages.
	defer func(w time.Duration) { linkKeyPackageWait = w }(linkKeyPackageWait)
	linkKeyPackageWait = 2 * time.Second
	node := startLinkNode(t)
	b, user := linkPrimary(t, node)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bob, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := b.AddContact(ctx, bob, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	step, answer, dev, keysc := newDeviceSide(t, node, func(keys *link.Keys, dev ed25519.PrivateKey) []byte {
		req, _ := link.MarshalRequest(keys, dev, "laptop")
		s, _ := keys.Seal(link.BoxRequest, req)
		return s
	})
	res, err := b.Link(ctx, time.Minute, step)
	if err != nil {
		t.Fatal(err)
	}
	devPub := dev.Public().(ed25519.PublicKey)
	if !res.Device.Key.Equal(devPub) || res.Device.Name != "laptop" {
		t.Fatalf("linked %+v", res.Device)
	}
	keys := <-keysc
	sealed := <-answer
	resp, err := openResponse(keys, sealed, devPub, time.Now())
	if err != nil {
		t.Fatalf("the response does not check out: %v", err)
	}
	if !resp.User.Equal(user) || len(resp.Contacts) != 1 || resp.Contacts[0].Name != "bob" || !resp.Contacts[0].Verified {
		t.Fatalf("response %+v", resp)
	}
	// The node has the list, version 1, with both devices; the slot is
	// closed (the code is one-use).
	c := b.client()
	l, err := b.currentDeviceList(ctx, c, user)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 1 || len(l.Devices) != 2 || !l.Has(user) || !l.Has(devPub) {
		t.Fatalf("device list %+v", l)
	}
	if p, err := c.LinkGet(ctx, keys.Slot[:], link.BoxRequest); err == nil && len(p) > 0 {
		t.Errorf("slot still open after the link")
	}
	info, err := b.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 1 || len(info.Devices) != 2 || !info.Primary {
		t.Fatalf("devices %+v", info)
	}
}

func TestLinkPrimaryRefusesBadRequests(t *testing.T) {
	node := startLinkNode(t)
	b, user := linkPrimary(t, node)
	for _, c := range []struct {
		name    string
		request func(keys *link.Keys, dev ed25519.PrivateKey) []byte
		want    error
	}{
		{"replayed from another code", func(keys *link.Keys, dev ed25519.PrivateKey) []byte {
			other, _ := link.NewCode()
			ok, _ := link.Derive(other)
			req, _ := link.MarshalRequest(ok, dev, "replay") // signed for the other slot
			s, _ := keys.Seal(link.BoxRequest, req)
			return s
		}, link.ErrRequest},
		{"sealed under another code", func(keys *link.Keys, dev ed25519.PrivateKey) []byte {
			other, _ := link.NewCode()
			ok, _ := link.Derive(other)
			req, _ := link.MarshalRequest(ok, dev, "x")
			s, _ := ok.Seal(link.BoxRequest, req)
			return s
		}, link.ErrSealed},
		{"garbage", func(keys *link.Keys, dev ed25519.PrivateKey) []byte {
			g := make([]byte, 100)
			rand.Read(g)
			return g
		}, link.ErrSealed},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			step, answer, _, _ := newDeviceSide(t, node, c.request)
			_, err := b.Link(ctx, time.Minute, step)
			if !errors.Is(err, ErrLink) || !errors.Is(err, c.want) {
				t.Fatalf("Link = %v, want ErrLink and %v", err, c.want)
			}
			if p := <-answer; p != nil {
				t.Errorf("the primary answered a bad request")
			}
			if raw, err := b.client().FetchDevices(ctx, user); err != nil || len(raw) != 0 {
				t.Errorf("device list published after a bad request: %d bytes, %v", len(raw), err)
			}
		})
	}
}

func TestRevokeRefusals(t *testing.T) {
	node := startLinkNode(t)
	b, user := linkPrimary(t, node)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.RevokeDevice(ctx, FormatKey(user)); !errors.Is(err, ErrRevokeSelf) {
		t.Errorf("revoke self: %v", err)
	}
	if _, err := b.RevokeDevice(ctx, "00000000"); !errors.Is(err, ErrDeviceNotFound) && !errors.Is(err, ErrRevokeSelf) {
		t.Errorf("revoke unknown: %v", err)
	}
	if _, err := b.RevokeDevice(ctx, "abc"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("revoke by 3 characters: %v", err)
	}
}

// A backup restored with a node is a new device of the same person: its
// own key, certified by the user key it keeps (primary), in the device
// list the node publishes next to the old device.
func TestRestoreIsNewDevice(t *testing.T) {
	old := backupKDF
	backupKDF = devid.KDFParams{Time: 1, Memory: 8 * 1024, Threads: 1}
	t.Cleanup(func() { backupKDF = old })
	node := startLinkNode(t)
	a, user := linkPrimary(t, node)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	text, _, err := a.ExportIdentity(ctx, []byte("long enough"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}})
	got, err := fresh.RestoreIdentity(ctx, text, []byte("long enough"))
	if err != nil || !got.Equal(user) {
		t.Fatalf("restore: %x, %v", got, err)
	}
	u, d, err := fresh.OwnKeys(ctx)
	if err != nil || !u.Equal(user) || d.Equal(user) {
		t.Fatalf("restored keys: user %x device %x, %v", u, d, err)
	}
	if uid, err := fresh.UserIdentity(ctx); err != nil {
		t.Fatalf("the restored device is not primary: %v", err)
	} else {
		uid.Wipe()
	}
	l, err := a.currentDeviceList(ctx, a.client(), user)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 1 || len(l.Devices) != 2 || !l.Has(user) || !l.Has(d) {
		t.Fatalf("device list after the restore: %+v", l)
	}
	// Restoring again on the same state does nothing.
	if _, err := fresh.RestoreIdentity(ctx, text, []byte("long enough")); err != nil {
		t.Fatal(err)
	}
	if _, d2, _ := fresh.OwnKeys(ctx); !d2.Equal(d) {
		t.Fatalf("a second restore changed the device key")
	}
	// The restored device revokes the old one; a linked device could not.
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fresh.Run(rctx) }()
	defer func() { rcancel(); <-done }()
	pipelineWait(t, "the restored device connected", func() bool { return fresh.Connection().State == StateConnected })
	res, err := fresh.RevokeDevice(ctx, FormatKey(user)[:10])
	if err != nil || !res.Device.Equal(user) || res.Version != 2 {
		t.Fatalf("revoke the old device: %+v, %v", res, err)
	}
	info, err := fresh.Devices(ctx)
	if err != nil || info.Version != 2 || len(info.Devices) != 1 || !info.Devices[0].This || !info.Primary {
		t.Fatalf("devices after revoking the old one: %+v, %v", info, err)
	}
	// That device is lost too: a restore still works, though the
	// identity key itself is a revoked device by now.
	again := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}})
	if _, err := again.RestoreIdentity(ctx, text, []byte("long enough")); err != nil {
		t.Fatalf("restore after the identity key's device was revoked: %v", err)
	}
	_, d3, _ := again.OwnKeys(ctx)
	l, err = fresh.currentDeviceList(ctx, fresh.client(), user)
	if err != nil || l.Version != 3 || len(l.Devices) != 2 || !l.Has(d) || !l.Has(d3) {
		t.Fatalf("device list after the second restore: %+v, %v", l, err)
	}
}

// runBackend runs b until the test ends and waits for its connection.
func runBackend(t *testing.T, b *Backend) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Both real sides: the new device stores the linked identity (not
// primary), the contacts, and joins the primary's group from the Welcome
// of the primary's Add.
func TestLinkBothSides(t *testing.T) {
	node := startLinkNode(t)
	a, user := linkPrimary(t, node)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bob, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := a.AddContact(ctx, bob, "bob"); err != nil {
		t.Fatal(err)
	}
	g, err := a.CreateGroup(ctx, "family")
	if err != nil {
		t.Fatal(err)
	}
	nd := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}, Groups: true,
		Invitations: InviteAnyone, KeyPackageTarget: 2})
	runBackend(t, nd)
	codes := make(chan string, 1)
	type linked struct {
		res *LinkResult
		err error
	}
	primaryDone := make(chan linked, 1)
	go func() {
		res, err := a.Link(ctx, time.Minute, func(s LinkStep) error {
			if s.Code != "" {
				codes <- s.Code
			}
			return nil
		})
		primaryDone <- linked{res, err}
	}()
	acc, err := nd.AcceptLink(ctx, <-codes, "laptop", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !acc.User.Equal(user) || acc.Device.Equal(user) || acc.Contacts != 1 || acc.Groups != 1 {
		t.Fatalf("accepted %+v", acc)
	}
	p := <-primaryDone
	if p.err != nil || p.res.GroupsAdded != 1 || len(p.res.GroupsFailed) != 0 || !p.res.Device.Key.Equal(acc.Device) {
		t.Fatalf("primary: %+v, %v", p.res, p.err)
	}
	u, d, err := nd.OwnKeys(ctx)
	if err != nil || !u.Equal(user) || !d.Equal(acc.Device) {
		t.Fatalf("linked keys %x %x, %v", u, d, err)
	}
	if _, err := nd.UserIdentity(ctx); !errors.Is(err, ErrNotPrimaryDevice) {
		t.Fatalf("a linked device holds the user key: %v", err)
	}
	if _, err := nd.RevokeDevice(ctx, FormatKey(user)); !errors.Is(err, ErrNotPrimaryDevice) {
		t.Fatalf("revoke on a linked device: %v", err)
	}
	if _, err := nd.Link(ctx, time.Minute, func(LinkStep) error { return nil }); !errors.Is(err, ErrNotPrimaryDevice) {
		t.Fatalf("link on a linked device: %v", err)
	}
	other, _ := link.NewCode()
	if _, err := nd.AcceptLink(ctx, other.String(), "again", time.Second); !errors.Is(err, ErrIdentityPresent) {
		t.Fatalf("accepting a code with an identity: %v", err)
	}
	// The contact came along; both devices recorded the link.
	err = nd.view(ctx, func(tx *store.Tx) error {
		c, err := tx.Contact(bob)
		if err != nil || c.Name != "bob" {
			t.Errorf("imported contact %+v, %v", c, err)
		}
		return nil
	})
	for _, x := range []*Backend{a, nd} {
		if !hasDeviceEvent(t, x, user, acc.Device, "linked") {
			t.Errorf("no device event on %p", x)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	pipelineWait(t, "the new device in the group", func() bool {
		gs, err := nd.Groups(ctx)
		return err == nil && len(gs) == 1 && bytes.Equal(gs[0].ID, g.ID)
	})
	info, err := nd.Devices(ctx)
	if err != nil || info.Primary || len(info.Devices) != 2 {
		t.Fatalf("devices on the linked device: %+v, %v", info, err)
	}
	// Revoking it: the primary removes its leaf in one commit.
	ga, _ := a.groupInfoByID(ctx, g.ID)
	res, err := a.RevokeDevice(ctx, FormatKey(acc.Device))
	if err != nil || res.Groups != 1 || res.Version != 2 {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	gb, _ := a.groupInfoByID(ctx, g.ID)
	if gb.Epoch != ga.Epoch+1 {
		t.Fatalf("epoch %d after the revocation, %d before: not one commit", gb.Epoch, ga.Epoch)
	}
	pipelineWait(t, "the revoked device refused by the node", func() bool { return nd.Connection().State != StateConnected })
	if !hasDeviceEvent(t, a, user, acc.Device, "revoked") {
		t.Error("no revocation event on the primary")
	}
}

// hasDeviceEvent reports whether b recorded device of user as state
// ("linked" or "revoked"), as its own.
func hasDeviceEvent(t *testing.T, b *Backend, user, device ed25519.PublicKey, state string) bool {
	t.Helper()
	found := false
	err := b.view(context.Background(), func(tx *store.Tx) error {
		es, err := tx.EventsAfter(0, 1000)
		for _, e := range es {
			if e.Kind == store.EventDevice && bytes.Equal(e.Member, user) && bytes.Equal(e.By, device) && e.State == state && e.Detail == "own" {
				found = true
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
