package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/link"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file is linking a device (package internal/link) on both sides.
//
// The primary (a device holding the user identity key U) opens a slot at
// the node named by the code, waits for the new device's sealed request,
// certifies the requesting key D, publishes the device list with D, puts
// the sealed response (U, D's chain, the signed list, the contacts and the
// groups) in the slot and closes it; then it adds D to every group, one
// commit per group, with a KeyPackage D uploaded. The new device, on a
// state without identity, makes D, connects with D's certificate (not
// registered: the node lets anyone authenticated put a request), puts its
// request, waits for the response and checks it before it stores
// anything: the chain must be issued by the response's U and name D, the
// list must be signed by U and hold D.

// Link bounds.
const (
	// LinkTTL is how long a code is valid (the node's slot TTL).
	LinkTTL = 10 * time.Minute
	// AcceptWait is how long AcceptLink waits for the primary by default.
	AcceptWait = 2 * time.Minute
)

// Variables for tests:
var (
	// linkPoll is how often a side looks for the other's message.
	linkPoll = 200 * time.Millisecond
	// linkRefusalHold is how long a refused link's slot stays open for the
	// new device to read the refusal.
	linkRefusalHold = 3 * time.Second
	// linkKeyPackageWait is how long the primary waits for the new
	// device's first KeyPackages before adding it to the groups.
	linkKeyPackageWait = 2 * time.Minute
)

// Link runs the primary's side: a code (reported to step), the new
// device's request, its certificate and the device list with it, the
// response (the certified device is reported to step), and then an Add of
// the device in every group.
func (b *Backend) Link(ctx context.Context, timeout time.Duration, step func(LinkStep) error) (*LinkResult, error) {
	if timeout <= 0 || timeout > LinkTTL {
		timeout = LinkTTL
	}
	user, _, err := b.primaryUser(ctx)
	if err != nil {
		return nil, err
	}
	defer user.Wipe()
	c := b.client()
	if c == nil {
		return nil, fmt.Errorf("%w: linking goes through the node", ErrNotConnected)
	}
	s, err := link.NewCode()
	if err != nil {
		return nil, err
	}
	code := s.String()
	keys, err := link.Derive(s)
	clear(s[:])
	if err != nil {
		return nil, err
	}
	defer keys.Wipe()
	slot := keys.Slot[:]
	if err := c.LinkOpen(ctx, slot); err != nil {
		return nil, fmt.Errorf("%w: open the link slot: %w", ErrLink, err)
	}
	closed := false
	closeSlot := func() {
		if closed {
			return
		}
		closed = true
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := c.LinkClose(cctx, slot); err != nil {
			b.log.Warn("close link slot", "err", err)
		}
	}
	defer closeSlot()
	expires := time.Now().Add(timeout)
	if err := step(LinkStep{Code: code, Expires: expires}); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithDeadline(ctx, expires)
	defer cancel()
	sealed, err := pollBox(wctx, c, slot, link.BoxRequest)
	if err != nil {
		return nil, fmt.Errorf("%w: no device used the code: %w", ErrLink, err)
	}
	pt, err := keys.Open(link.BoxRequest, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: the request: %w", ErrLink, err)
	}
	req, err := link.ParseRequest(keys, pt)
	if err != nil {
		return nil, fmt.Errorf("%w: the request: %w", ErrLink, err)
	}
	now := time.Now()
	list, err := b.currentDeviceList(ctx, c, user.PublicKey())
	if err != nil {
		return nil, err
	}
	if list.Has(req.Device) {
		return nil, fmt.Errorf("%w: device %s is in the device list already", ErrLink, FormatKey(req.Device))
	}
	if len(list.Devices) >= devid.MaxDevices {
		return nil, fmt.Errorf("%w: %d devices", ErrTooManyDevices, len(list.Devices))
	}
	if err := b.linkConsent(ctx, c, keys, slot, req, step); err != nil {
		// The refusal stays in the slot for linkRefusalHold, which a new
		// device polling every linkPoll has ample time to read it in, and
		// then the slot is closed: left to the node's TTL, every refusal
		// held one of the identity's few slots for ten minutes. The code
		// is spent either way (one request).
		t := time.NewTimer(linkRefusalHold)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		return nil, err
	}
	now = time.Now()
	chain, err := user.IssueDevice(req.Device, req.Name, now, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: certify device: %w", ErrLink, err)
	}
	next := &devid.DeviceList{User: user.PublicKey(), Version: list.Version + 1, Created: now,
		Devices: append(slices.Clone(list.Devices), req.Device)}
	signed, err := next.Sign(user.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: sign device list: %w", ErrLink, err)
	}
	resp := link.Response{User: user.PublicKey(), Chain: chain, DeviceList: signed}
	groups, err := b.linkPayload(ctx, &resp)
	if err != nil {
		return nil, err
	}
	body, err := resp.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: response: %w", ErrLink, err)
	}
	sealedResp, err := keys.Seal(link.BoxResponse, body)
	if err != nil {
		return nil, fmt.Errorf("%w: response: %w", ErrLink, err)
	}
	if _, err := c.PublishDevices(ctx, signed); err != nil {
		return nil, fmt.Errorf("%w: publish the device list: %w", ErrLink, err)
	}
	b.notePublished(ctx, next)
	if err := c.LinkPut(ctx, slot, link.BoxResponse, sealedResp); err != nil {
		// D is listed but never got its identity: withdraw it, so no
		// half-linked device stays in the list.
		if werr := b.withdrawLinked(ctx, c, user, next, req.Device); werr != nil {
			return nil, fmt.Errorf("%w: send the response: %w; withdrawing device %s failed: %w", ErrLink, err, FormatKey(req.Device), werr)
		}
		return nil, fmt.Errorf("%w: send the response: %w (device %s withdrawn from the list)", ErrLink, err, FormatKey(req.Device))
	}
	dev := DeviceEntry{Key: req.Device, Name: req.Name}
	b.log.Info("device linked", "device", FormatKey(req.Device), "name", req.Name, "list_version", next.Version)
	b.deviceEvent(ctx, user.PublicKey(), req.Device, false)
	if err := step(LinkStep{Device: &dev}); err != nil {
		return nil, err
	}
	res := &LinkResult{Device: dev}
	// The slot closes once the new device has read the response, which
	// its first KeyPackages at the node show (or after the wait; the
	// node's TTL ends it in any case): closing it at once would take the
	// response away before the device reads it.
	kpErr := b.waitDeviceKeyPackage(ctx, user.PublicKey(), req.Device)
	closeSlot()
	if len(groups) == 0 {
		return res, nil
	}
	if kpErr != nil {
		for _, g := range groups {
			res.GroupsFailed = append(res.GroupsFailed, FormatKey(g.ID)+": "+kpErr.Error())
		}
		return res, nil
	}
	for _, g := range groups {
		if _, _, err := b.runPlan(ctx, FormatKey(g.ID), commitPlan{kind: intentAddDevices, peers: []ed25519.PublicKey{req.Device}}, 0); err != nil {
			b.log.Warn("add linked device to group", "group", FormatKey(g.ID), "err", err)
			res.GroupsFailed = append(res.GroupsFailed, FormatKey(g.ID)+": "+err.Error())
			continue
		}
		res.GroupsAdded++
	}
	return res, nil
}

// pollBox waits for the payload in box of slot.
func pollBox(ctx context.Context, c *nodeclient.Client, slot []byte, box uint8) ([]byte, error) {
	t := time.NewTicker(linkPoll)
	defer t.Stop()
	for {
		p, err := c.LinkGet(ctx, slot, box)
		if err != nil {
			return nil, err
		}
		if len(p) > 0 {
			return p, nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// linkPayload fills the contacts and groups of a response and returns the
// groups the new device is to be added to.
func (b *Backend) linkPayload(ctx context.Context, resp *link.Response) ([]store.Group, error) {
	var groups []store.Group
	err := b.view(ctx, func(tx *store.Tx) error {
		cs, err := tx.Contacts()
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Blocked || len(c.Identity) != ed25519.PublicKeySize || len(resp.Contacts) == link.MaxContacts {
				continue
			}
			resp.Contacts = append(resp.Contacts, link.Contact{Name: c.Name, Key: ed25519.PublicKey(c.Identity), Verified: !c.VerifiedAt.IsZero()})
		}
		gs, err := tx.Groups(false)
		if err != nil {
			return err
		}
		for _, g := range gs {
			if !g.LeftAt.IsZero() || len(resp.Groups) == link.MaxGroups {
				continue
			}
			name := g.Name
			if len(name) > link.MaxGroupName {
				name = ""
			}
			resp.Groups = append(resp.Groups, link.Group{ID: g.ID, Name: name})
			groups = append(groups, g)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backend: link: %w", err)
	}
	return groups, nil
}

// waitDeviceKeyPackage waits until the node has a KeyPackage of device
// (the new device uploads them once it has its identity).
func (b *Backend) waitDeviceKeyPackage(ctx context.Context, user, device ed25519.PublicKey) error {
	wctx, cancel := context.WithTimeout(ctx, linkKeyPackageWait)
	defer cancel()
	t := time.NewTicker(linkPoll)
	defer t.Stop()
	for {
		if c := b.client(); c != nil {
			pkgs, _, err := c.FetchUserKeyPackagesSuite(wctx, user, uint16(b.cfg.GroupSuite), true)
			if err == nil && slices.ContainsFunc(pkgs, func(p nodeclient.DevicePackage) bool { return device.Equal(ed25519.PublicKey(p.Device)) }) {
				return nil
			}
		}
		select {
		case <-t.C:
		case <-wctx.Done():
			return fmt.Errorf("%w: the new device uploaded no KeyPackage within %v", ErrNoKeyPackage, linkKeyPackageWait)
		}
	}
}

// currentDeviceList is user's device list at the node, checked: signed by
// user; the implicit list {user} when none is published.
func (b *Backend) currentDeviceList(ctx context.Context, c *nodeclient.Client, user ed25519.PublicKey) (*devid.DeviceList, error) {
	raw, err := c.FetchDevices(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch the device list: %w", ErrNotConnected, err)
	}
	if len(raw) == 0 {
		l := devid.ImplicitDeviceList(user)
		if err := b.acceptListVersion(ctx, l); err != nil {
			return nil, err
		}
		return l, nil
	}
	l, err := devid.ParseDeviceList(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the node's device list of %s: %w", ErrInvalidArgument, FormatKey(user), err)
	}
	if !l.User.Equal(user) {
		return nil, fmt.Errorf("%w: the node answered the device list of %s for %s", ErrInvalidArgument, FormatKey(l.User), FormatKey(user))
	}
	if err := b.acceptListVersion(ctx, l); err != nil {
		return nil, err
	}
	return l, nil
}

// AcceptLink runs the new device's side with code; name labels it. It
// stores nothing unless the whole response checks out.
func (b *Backend) AcceptLink(ctx context.Context, code, name string, timeout time.Duration) (*AcceptedLink, error) {
	return b.AcceptLinkShowing(ctx, code, name, timeout, nil)
}

// AcceptLinkShowing is AcceptLink that reports this device's new key to
// shown (when not nil) once its request is at the node, so the person can
// compare it with the key the primary shows.
func (b *Backend) AcceptLinkShowing(ctx context.Context, code, name string, timeout time.Duration, shown func(device ed25519.PublicKey)) (*AcceptedLink, error) {
	if timeout <= 0 {
		timeout = AcceptWait
	}
	s, err := link.ParseCode(code)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLink, err)
	}
	keys, err := link.Derive(s)
	clear(s[:])
	if err != nil {
		return nil, err
	}
	defer keys.Wipe()
	if id, err := b.identity(ctx); err == nil {
		id.Wipe()
		return nil, ErrIdentityPresent
	} else if !errors.Is(err, ErrNotRegistered) {
		return nil, err
	}
	if b.cfg.NodeAddr == "" {
		return nil, fmt.Errorf("%w: no node configured", ErrNotConnected)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("backend: device key: %w", err)
	}
	defer clear(priv)
	reqBody, err := link.MarshalRequest(keys, priv, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	sealed, err := keys.Seal(link.BoxRequest, reqBody)
	if err != nil {
		return nil, err
	}
	c, err := b.dialDevice(ctx, priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	defer c.Close()
	slot := keys.Slot[:]
	if err := c.LinkPut(ctx, slot, link.BoxRequest, sealed); err != nil {
		return nil, fmt.Errorf("%w: the node took no request for this code (a wrong, expired or used code?): %w", ErrLink, err)
	}
	b.log.Info("link request sent; compare this device's key with the one the primary shows", "device", FormatKey(pub))
	if shown != nil {
		shown(pub)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sealedResp, err := pollBox(wctx, c, slot, link.BoxResponse)
	if err != nil {
		return nil, fmt.Errorf("%w: no answer from the primary device: %w", ErrLink, err)
	}
	resp, err := openResponse(keys, sealedResp, pub, time.Now())
	if err != nil {
		return nil, err
	}
	if err := b.storeLinked(ctx, resp, priv); err != nil {
		return nil, err
	}
	b.log.Info("linked as a new device", "identity", FormatKey(resp.User), "device", FormatKey(pub), "contacts", len(resp.Contacts), "groups", len(resp.Groups))
	b.deviceEvent(ctx, resp.User, pub, false)
	b.setState(StateDisconnected, "", false)
	b.markRegistered()
	return &AcceptedLink{User: resp.User, Device: pub, Contacts: len(resp.Contacts), Groups: len(resp.Groups)}, nil
}

// openResponse opens and checks the primary's response for device: it
// opens under the code, its chain is issued by its user for device, and
// its device list is signed by that user and holds device.
func openResponse(keys *link.Keys, sealed []byte, device ed25519.PublicKey, now time.Time) (*link.Response, error) {
	pt, err := keys.Open(link.BoxResponse, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: the response: %w", ErrLink, err)
	}
	if refused, err := link.IsRefusal(pt, device); err != nil {
		return nil, fmt.Errorf("%w: the response: %w", ErrLink, err)
	} else if refused {
		return nil, fmt.Errorf("%w: %w (this device's key was %s)", ErrLinkRefused, link.ErrRefused, FormatKey(device))
	}
	resp, err := link.ParseResponse(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: the response: %w", ErrLink, err)
	}
	if _, err := resp.CheckChain(device, now); err != nil {
		return nil, fmt.Errorf("%w: the response: %w", ErrLink, err)
	}
	l, err := devid.ParseDeviceList(resp.DeviceList)
	if err != nil {
		return nil, fmt.Errorf("%w: the response's device list: %w: %w", ErrLink, link.ErrWrongUser, err)
	}
	if !l.User.Equal(resp.User) || !l.Has(device) {
		return nil, fmt.Errorf("%w: the response's device list: %w: it is %s's and does not hold this device", ErrLink, link.ErrWrongUser, FormatKey(l.User))
	}
	return resp, nil
}

// dialDevice connects with a device key that is not registered yet.
func (b *Backend) dialDevice(ctx context.Context, priv ed25519.PrivateKey) (*nodeclient.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	cfg := nodeclient.Config{Identity: priv, RequirePQTLS: b.cfg.RequirePQTLS, Logger: b.log.With("component", "nodeclient")}
	if b.cfg.NodeCert != nil {
		cfg.PinnedCert = b.cfg.NodeCert
	} else {
		cfg.VerifyServer = b.verifyTOFU
	}
	return nodeclient.Dial(dctx, b.cfg.NodeAddr, cfg)
}

// storeLinked stores the linked identity and imports the contacts, in one
// transaction.
func (b *Backend) storeLinked(ctx context.Context, resp *link.Response, device ed25519.PrivateKey) error {
	id, err := linkedIdentity(resp.User, device, resp.Chain, nil, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %w: %w", ErrLink, link.ErrWrongUser, err)
	}
	defer id.Wipe()
	err = b.update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Identity(); err == nil {
			return ErrIdentityPresent
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.PutIdentity(id); err != nil {
			return err
		}
		// The list was checked with the response: U signed it.
		if l, err := devid.ParseDeviceList(resp.DeviceList); err == nil {
			if err := tx.NoteDeviceListVersion(l.User, l.Version); err != nil {
				return err
			}
		}
		for _, c := range resp.Contacts {
			if c.Key.Equal(resp.User) {
				continue
			}
			sc := store.Contact{Identity: c.Key, Name: c.Name, AddedAt: time.Now()}
			if c.Name != "" && !validContactName(c.Name) {
				sc.Name = ""
			}
			if c.Verified {
				sc.VerifiedAt = time.Now()
			}
			if err := tx.PutContact(sc); errors.Is(err, store.ErrExists) {
				sc.Name = ""
				err = tx.PutContact(sc)
				if err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return opError("store linked identity", err)
	}
	return nil
}
