package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file is the person's devices as the API sees them: the list, and
// revoking one (link.go adds them).

// The refusals of the device calls.
var (
	// ErrRevokeSelf: revoking the device that asks.
	ErrRevokeSelf = errors.New("a device cannot revoke itself: revoke it from another primary device")
	// ErrDeviceNotFound: no device of the list matches.
	ErrDeviceNotFound = errors.New("no such device in the device list")
	// ErrAmbiguousDevice: a key prefix that starts several devices' keys.
	ErrAmbiguousDevice = errors.New("device key prefix is ambiguous")
	// ErrIdentityPresent: linking a daemon that already has an identity.
	ErrIdentityPresent = errors.New("this daemon already has an identity: link a new device on an empty state folder")
	// ErrLink: the link exchange failed (a wrong or expired code, a
	// response that does not check out); it wraps the reason.
	ErrLink = errors.New("link failed")
	// ErrTooManyDevices: the device list is full.
	ErrTooManyDevices = errors.New("the device list is full")
	// ErrRevokeIncomplete: the device is out of the device list but its
	// removal failed in some groups (RevokeResult.GroupsFailed); revoking
	// it again completes them.
	ErrRevokeIncomplete = errors.New("revocation incomplete: the device is still in some groups")
)

// DeviceEntry is one device of the person.
type DeviceEntry struct {
	Key  ed25519.PublicKey
	Name string // known for devices this one linked, and itself
	This bool
}

// DevicesInfo is the person's device list as this device knows it.
type DevicesInfo struct {
	User    ed25519.PublicKey
	Version uint64 // 0: no list published (the identity key is the only device)
	Devices []DeviceEntry
	Primary bool
}

// RevokeResult is what RevokeDevice did.
type RevokeResult struct {
	Device       ed25519.PublicKey
	Version      uint64
	Groups       int
	GroupsFailed []string // "id: reason"
}

// LinkStep is one step of Link, reported as it happens.
type LinkStep struct {
	// Code and Expires: the code to show (first step).
	Code    string
	Expires time.Time
	// Request: the device asking to be linked, for the user to confirm
	// (second step). Returning an error from step refuses it; step must
	// answer within LinkConsentWait.
	Request *DeviceEntry
	// Device: the device certified (third step).
	Device *DeviceEntry
}

// LinkResult is what Link did once the device is in the groups.
type LinkResult struct {
	Device       DeviceEntry
	GroupsAdded  int
	GroupsFailed []string // "id: reason"
}

// AcceptedLink is what AcceptLink stored.
type AcceptedLink struct {
	User, Device ed25519.PublicKey
	Contacts     int
	Groups       int
}

// primaryUser returns the user identity (its key and a certificate) when
// this device holds the identity key, and this device's key; else
// ErrNotPrimaryDevice. The caller wipes the user.
func (b *Backend) primaryUser(ctx context.Context) (*devid.User, ed25519.PublicKey, error) {
	u, err := b.UserIdentity(ctx)
	if err != nil {
		return nil, nil, err
	}
	_, self, err := b.OwnKeys(ctx)
	if err != nil {
		u.Wipe()
		return nil, nil, err
	}
	return u, self, nil
}

// ownUser returns this person's user key and this device's key.
func (b *Backend) ownUser(ctx context.Context) (user, device ed25519.PublicKey, err error) {
	return b.OwnKeys(ctx)
}

// deviceEvent records that device of user was linked or revoked.
func (b *Backend) deviceEvent(ctx context.Context, user, device ed25519.PublicKey, revoked bool) {
	state := "linked"
	if revoked {
		state = "revoked"
	}
	own, _, _ := b.ownUser(ctx)
	detail := ""
	if own.Equal(user) {
		detail = "own"
	}
	if err := b.update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Kind: store.EventDevice, Member: user, By: device, State: state, Detail: detail})
		return err
	}); err != nil {
		b.log.Error("record device event", "err", err)
	}
}

// Devices lists the person's devices: the node's current list (the
// implicit one of the identity key alone when none is published), with
// the labels the devices' certificates in this device's groups give.
func (b *Backend) Devices(ctx context.Context) (*DevicesInfo, error) {
	user, self, err := b.ownUser(ctx)
	if err != nil {
		return nil, err
	}
	c := b.client()
	if c == nil {
		return nil, fmt.Errorf("%w: the device list is at the node", ErrNotConnected)
	}
	l, err := b.currentDeviceList(ctx, c, user)
	if err != nil {
		return nil, err
	}
	u, primaryErr := b.UserIdentity(ctx)
	if primaryErr == nil {
		u.Wipe()
	}
	info := &DevicesInfo{User: user, Version: l.Version, Primary: primaryErr == nil}
	names := b.deviceNames(ctx, user)
	for _, d := range l.Devices {
		info.Devices = append(info.Devices, DeviceEntry{Key: d, Name: names[string(d)], This: d.Equal(self)})
	}
	return info, nil
}

// deviceNames reads the labels of user's devices from the x509
// credentials of the leaves in this device's groups.
func (b *Backend) deviceNames(ctx context.Context, user ed25519.PublicKey) map[string]string {
	names := map[string]string{}
	now := time.Now()
	err := b.view(ctx, func(tx *store.Tx) error {
		gs, err := tx.Groups(false)
		if err != nil {
			return err
		}
		for _, sg := range gs {
			_, g, err := loadGroup(tx, sg.ID)
			if err != nil {
				continue
			}
			for _, m := range g.Members() {
				if m.Credential.Type != mls.CredentialX509 {
					continue
				}
				d, err := devid.Verify(m.Credential.Certificates, m.SignatureKey, now)
				if err == nil && d.User.Equal(user) {
					names[string(d.Key)] = d.Name
				}
			}
		}
		return nil
	})
	if err != nil {
		// The names only label the list; it is shown without them.
		b.log.Warn("read device names from the groups", "err", err)
	}
	return names
}

// RevokeDevice revokes the device named by key or key prefix: the device
// list without it goes to the node (which refuses the device from then
// on), then a Remove of its leaves in every group, one commit per group.
func (b *Backend) RevokeDevice(ctx context.Context, device string) (*RevokeResult, error) {
	user, self, err := b.primaryUser(ctx)
	if err != nil {
		return nil, err
	}
	defer user.Wipe()
	c := b.client()
	if c == nil {
		return nil, fmt.Errorf("%w: revoking goes through the node", ErrNotConnected)
	}
	l, err := b.currentDeviceList(ctx, c, user.PublicKey())
	if err != nil {
		return nil, err
	}
	d, err := matchDevice(l, device)
	if errors.Is(err, ErrDeviceNotFound) {
		// Revoked before, with removals left to do: the list lacks it
		// already, so only the groups remain.
		leaves, lerr := b.revokedLeaves(ctx, user.PublicKey(), l)
		if lerr != nil {
			return nil, fmt.Errorf("backend: read the groups for revoked leaves: %w", lerr)
		}
		left, lerr := matchDevice(&devid.DeviceList{Devices: leaves}, device)
		if lerr != nil {
			return nil, err
		}
		if left.Equal(self) {
			return nil, ErrRevokeSelf
		}
		b.log.Info("completing a revocation", "device", FormatKey(left), "list_version", l.Version)
		return b.removeRevoked(ctx, left, l.Version)
	}
	if err != nil {
		return nil, err
	}
	if d.Equal(self) {
		return nil, ErrRevokeSelf
	}
	next := &devid.DeviceList{User: user.PublicKey(), Version: l.Version + 1, Created: time.Now()}
	for _, k := range l.Devices {
		if !k.Equal(d) {
			next.Devices = append(next.Devices, k)
		}
	}
	signed, err := next.Sign(user.Key)
	if err != nil {
		return nil, fmt.Errorf("backend: sign device list: %w", err)
	}
	if _, err := c.PublishDevices(ctx, signed); err != nil {
		return nil, fmt.Errorf("%w: publish the device list: %w", ErrNotConnected, err)
	}
	b.notePublished(ctx, next)
	b.log.Info("device revoked", "device", FormatKey(d), "list_version", next.Version)
	b.deviceEvent(ctx, user.PublicKey(), d, true)
	return b.removeRevoked(ctx, d, next.Version)
}

// removeRevoked removes the leaves of device, out of the device list of
// version, from every group, one commit per group. A group whose commit
// fails is named in GroupsFailed and the error is ErrRevokeIncomplete
// (with the result).
func (b *Backend) removeRevoked(ctx context.Context, d ed25519.PublicKey, version uint64) (*RevokeResult, error) {
	res := &RevokeResult{Device: d, Version: version}
	groups, err := b.groupsWithLeaf(ctx, d)
	if err != nil {
		// The list lacks d already; revoking it again finds its groups.
		return res, fmt.Errorf("%w: read the groups holding the device: %w", ErrRevokeIncomplete, err)
	}
	for _, g := range groups {
		if _, _, err := b.runPlan(ctx, FormatKey(g), commitPlan{kind: intentRemoveDevice, peers: []ed25519.PublicKey{d}}, 0); err != nil {
			b.log.Warn("remove revoked device from group", "group", FormatKey(g), "err", err)
			res.GroupsFailed = append(res.GroupsFailed, FormatKey(g)+": "+err.Error())
			continue
		}
		res.Groups++
	}
	if len(res.GroupsFailed) > 0 {
		return res, fmt.Errorf("%w: %d of %d group(s) failed (revoke it again to complete them): %s", ErrRevokeIncomplete,
			len(res.GroupsFailed), len(res.GroupsFailed)+res.Groups, strings.Join(res.GroupsFailed, "; "))
	}
	return res, nil
}

// revokedLeaves are the keys of leaves of this person (user) in this
// device's active groups that the device list l no longer holds: devices
// revoked whose removal is not done yet.
func (b *Backend) revokedLeaves(ctx context.Context, user ed25519.PublicKey, l *devid.DeviceList) ([]ed25519.PublicKey, error) {
	seen := map[string]bool{}
	var out []ed25519.PublicKey
	now := time.Now()
	err := b.activeGroups(ctx, func(_ []byte, g *mls.Group) {
		for _, m := range g.Members() {
			key := ed25519.PublicKey(m.SignatureKey)
			if len(key) != ed25519.PublicKeySize || seen[string(key)] || l.Has(key) {
				continue
			}
			mine := key.Equal(user) // the identity key's own basic leaf
			if m.Credential.Type == mls.CredentialX509 {
				d, err := devid.Verify(m.Credential.Certificates, m.SignatureKey, now)
				mine = err == nil && d.User.Equal(user)
			}
			if mine {
				seen[string(key)] = true
				out = append(out, bytes.Clone(key))
			}
		}
	})
	return out, err
}

// activeGroups calls fn with each of this device's active groups. A group
// whose state does not load is passed over (it is not one this device can
// commit in); a failure to read the store is the error.
func (b *Backend) activeGroups(ctx context.Context, fn func(id []byte, g *mls.Group)) error {
	return b.view(ctx, func(tx *store.Tx) error {
		gs, err := tx.Groups(false)
		if err != nil {
			return err
		}
		for _, sg := range gs {
			if _, g, err := loadGroup(tx, sg.ID); err == nil && g.Active() {
				fn(sg.ID, g)
			}
		}
		return nil
	})
}

// matchDevice finds the device of l that text names: a whole key, or a
// prefix of at least 8 hex characters that starts exactly one key.
func matchDevice(l *devid.DeviceList, text string) (ed25519.PublicKey, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	if len(t) < 8 {
		return nil, fmt.Errorf("%w: name a device by its key or at least 8 of its hex characters", ErrInvalidArgument)
	}
	if _, err := hex.DecodeString(t[:len(t)&^1]); err != nil {
		return nil, fmt.Errorf("%w: device %q is not hex", ErrInvalidArgument, truncate(text, 80))
	}
	var found ed25519.PublicKey
	for _, d := range l.Devices {
		if strings.HasPrefix(FormatKey(d), t) {
			if found != nil {
				return nil, fmt.Errorf("%w: %s", ErrAmbiguousDevice, t)
			}
			found = d
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrDeviceNotFound, t)
	}
	return found, nil
}

// groupsWithLeaf lists the groups (ids) in which device has a leaf.
func (b *Backend) groupsWithLeaf(ctx context.Context, device ed25519.PublicKey) ([][]byte, error) {
	var out [][]byte
	err := b.activeGroups(ctx, func(id []byte, g *mls.Group) {
		if len(leavesOf(g, device)) > 0 {
			out = append(out, id)
		}
	})
	return out, err
}

// leavesOf are the leaves of g whose signature key is device.
func leavesOf(g *mls.Group, device []byte) []mls.LeafIndex {
	var out []mls.LeafIndex
	for _, m := range g.Members() {
		if subtle.ConstantTimeCompare(m.SignatureKey, device) == 1 {
			out = append(out, m.Leaf)
		}
	}
	return out
}

// addDevicesIntent adds own devices not yet in the group, each with a
// KeyPackage fetched by its device key and checked: it speaks for this
// person under the identity rule and its leaf key is that device.
func (b *Backend) addDevicesIntent(devices []ed25519.PublicKey) commitIntent {
	return func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error) {
		user, _, err := b.ownUser(ctx)
		if err != nil {
			return nil, nil, err
		}
		var kps []*mls.KeyPackage
		var to [][]byte
		for _, d := range devices {
			if bytes.Equal(d, self) || len(leavesOf(g, d)) > 0 {
				continue
			}
			raw, err := c.FetchKeyPackageSuite(ctx, d, uint16(g.CipherSuite()))
			if errors.Is(err, nodeclient.ErrNoKeyPackage) {
				return nil, nil, fmt.Errorf("%w: the node has none for device %s", ErrNoKeyPackage, FormatKey(d))
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%w: fetch key package: %w", ErrNotConnected, err)
			}
			info := inspectKeyPackage(identityRule, raw, user, time.Now())
			if !info.Valid {
				return nil, nil, b.refuseKeyPackage(ctx, g.GroupID(), d, info)
			}
			kp, err := mls.ParseKeyPackage(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: KeyPackage of %s: %w", ErrInvalidArgument, FormatKey(d), err)
			}
			if subtle.ConstantTimeCompare(kp.LeafNode.SignatureKey, d) != 1 {
				return nil, nil, b.refuseKeyPackage(ctx, g.GroupID(), d, KeyPackageInfo{Err: fmt.Errorf("%w: KeyPackage fetched for device %s has leaf key %x", ErrIdentityMismatch, FormatKey(d), truncateBytes(kp.LeafNode.SignatureKey))})
			}
			if kp.CipherSuite != g.CipherSuite() {
				return nil, nil, fmt.Errorf("%w: KeyPackage of %s is for suite %v, the group uses %v", ErrInvalidArgument, FormatKey(d), kp.CipherSuite, g.CipherSuite())
			}
			kps = append(kps, kp)
			to = append(to, d)
		}
		if len(kps) == 0 {
			return nil, nil, nil
		}
		return b.addDevices(ctx, g, kps, to)
	}
}

// removeDeviceIntent removes every leaf of device; none left is nothing
// to do (a re-run, or another device removed it first).
func removeDeviceIntent(device ed25519.PublicKey) commitIntent {
	return func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error) {
		if bytes.Equal(device, self) {
			return nil, nil, ErrRevokeSelf
		}
		leaves := leavesOf(g, device)
		if len(leaves) == 0 {
			return nil, nil, nil
		}
		res, err := g.RemoveMembers(leaves, nil)
		return res, nil, err
	}
}
