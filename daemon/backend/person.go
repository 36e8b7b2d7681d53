package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file turns a person into devices. One invites a person (a user key
// U); what joins the group is every current device of U, each its own
// leaf. The node hands out U's signed device list and one KeyPackage per
// listed device, and is trusted for none of it:
//
//   - the list must be signed by U (devid.ParseDeviceList) and name U; a
//     user without a published list has the implicit list {U};
//   - each KeyPackage must pass the identity rule for U (its credential
//     chains to U, or is U's own basic credential) and its leaf key must
//     be the listed device the node says it is for.
//
// Anything else refuses the whole invitation, and the refusal is an event
// (a node that substitutes or adds a device of its own). A listed device
// with no KeyPackage left is left out, like a device that is offline; the
// person's other devices can add it later.
//
// One's own other devices go into every group one makes or invites into:
// the list of one's own user is fetched the same way and every device not
// yet in the group is added in the same commit.

// ErrDeviceList: a person's device list the node handed out is not the
// person's (not signed by the user key, another user's, malformed).
var ErrDeviceList = errors.New("device list refused")

// deviceList returns user's device list as the node gave it (raw; nil:
// none), checked: signed by user (the implicit list {user} when none is
// published).
func deviceList(user ed25519.PublicKey, raw []byte) (*devid.DeviceList, error) {
	if len(raw) == 0 {
		return devid.ImplicitDeviceList(user), nil
	}
	l, err := devid.ParseDeviceList(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: device list of %s: %w", ErrIdentityMismatch, ErrDeviceList, FormatKey(user), err)
	}
	if !l.User.Equal(user) {
		return nil, fmt.Errorf("%w: %w: the device list for %s is %s's", ErrIdentityMismatch, ErrDeviceList, FormatKey(user), FormatKey(l.User))
	}
	return l, nil
}

// personDeviceList is deviceList, and not older than a list accepted
// before (devicelist_version.go).
func (b *Backend) personDeviceList(ctx context.Context, user ed25519.PublicKey, raw []byte) (*devid.DeviceList, error) {
	l, err := deviceList(user, raw)
	if err != nil {
		return nil, err
	}
	if err := b.acceptListVersion(ctx, l); err != nil {
		return nil, err
	}
	return l, nil
}

// fetchDeviceList fetches and checks user's device list.
func (b *Backend) fetchDeviceList(ctx context.Context, c *nodeclient.Client, user ed25519.PublicKey) (*devid.DeviceList, error) {
	raw, err := c.FetchDevices(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch devices of %s: %w", ErrNotConnected, FormatKey(user), err)
	}
	return b.personDeviceList(ctx, user, raw)
}

// checkDevicePackage checks a KeyPackage the node gave for device of
// user, for group g: the identity rule says user, the leaf key is device,
// the suite is g's.
func (b *Backend) checkDevicePackage(ctx context.Context, g *mls.Group, user, device ed25519.PublicKey, raw []byte) (*mls.KeyPackage, error) {
	info := inspectKeyPackage(identityRule, raw, user, time.Now())
	if !info.Valid {
		return nil, b.refuseKeyPackage(ctx, g.GroupID(), user, info)
	}
	if info.Suite != g.CipherSuite() {
		return nil, fmt.Errorf("%w: KeyPackage of %s is for suite %v, the group uses %v", ErrInvalidArgument, FormatKey(user), info.Suite, g.CipherSuite())
	}
	kp, err := mls.ParseKeyPackage(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: KeyPackage of %s: %w", ErrInvalidArgument, FormatKey(user), err)
	}
	if !bytes.Equal(kp.LeafNode.SignatureKey, device) {
		info.Err = fmt.Errorf("%w: KeyPackage handed out for device %s has leaf key %s", ErrIdentityMismatch, FormatKey(device), FormatKey(kp.LeafNode.SignatureKey))
		return nil, b.refuseKeyPackage(ctx, g.GroupID(), user, info)
	}
	return kp, nil
}

// fetchDeviceKeyPackage fetches and checks one KeyPackage of device of
// user for g. A device with none left is ErrNoKeyPackage.
func (b *Backend) fetchDeviceKeyPackage(ctx context.Context, c *nodeclient.Client, g *mls.Group, user, device ed25519.PublicKey) (*mls.KeyPackage, error) {
	raw, err := c.FetchKeyPackageSuite(ctx, device, uint16(g.CipherSuite()))
	if errors.Is(err, nodeclient.ErrNoKeyPackage) {
		return nil, fmt.Errorf("%w: the node has none of suite %s for device %s of %s", ErrNoKeyPackage, g.CipherSuite().Name(), FormatKey(device), FormatKey(user))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: fetch key package: %w", ErrNotConnected, err)
	}
	return b.checkDevicePackage(ctx, g, user, device, raw)
}

// personKeyPackages fetches KeyPackages for the devices of person user not
// yet in g, and returns them with their device keys. None at all is
// ErrNoKeyPackage.
func (b *Backend) personKeyPackages(ctx context.Context, c *nodeclient.Client, g *mls.Group, user ed25519.PublicKey) ([]*mls.KeyPackage, [][]byte, error) {
	var kps []*mls.KeyPackage
	var devs [][]byte
	if !hasUser(g, user) {
		// A new person: one call, one KeyPackage per listed device.
		pkgs, raw, err := c.FetchUserKeyPackagesSuite(ctx, user, uint16(g.CipherSuite()), false)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: fetch key packages of %s: %w", ErrNotConnected, FormatKey(user), err)
		}
		l, err := b.personDeviceList(ctx, user, raw)
		if err != nil {
			b.refused(ctx, refusalEvent(g, user, err))
			return nil, nil, err
		}
		seen := map[string]bool{}
		for _, p := range pkgs {
			d := ed25519.PublicKey(p.Device)
			if !l.Has(d) || seen[string(d)] {
				err := fmt.Errorf("%w: %w: the node handed out a KeyPackage for %s, which is not (or twice) in the device list of %s", ErrIdentityMismatch, ErrDeviceList, FormatKey(d), FormatKey(user))
				b.refused(ctx, refusalEvent(g, user, err))
				return nil, nil, err
			}
			seen[string(d)] = true
			kp, err := b.checkDevicePackage(ctx, g, user, d, p.Package)
			if err != nil {
				return nil, nil, err
			}
			kps, devs = append(kps, kp), append(devs, bytes.Clone(d))
		}
	} else {
		// Some devices are in already: the others, one by one.
		l, err := b.fetchDeviceList(ctx, c, user)
		if err != nil {
			if errors.Is(err, ErrIdentityMismatch) {
				b.refused(ctx, refusalEvent(g, user, err))
			}
			return nil, nil, err
		}
		for _, d := range l.Devices {
			if _, ok := memberByDevice(g, d); ok {
				continue
			}
			kp, err := b.fetchDeviceKeyPackage(ctx, c, g, user, d)
			if errors.Is(err, ErrNoKeyPackage) {
				b.log.Info("device left out: no KeyPackage", "user", FormatKey(user), "device", FormatKey(d))
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			kps, devs = append(kps, kp), append(devs, bytes.Clone(d))
		}
		return kps, devs, nil
	}
	if len(kps) == 0 {
		if g.CipherSuite() != DefaultCipherSuite {
			return nil, nil, fmt.Errorf("%w: the node has no KeyPackage of the group's suite %s for %s: the peer has not registered, or its qpd publishes no post-quantum KeyPackages", ErrNoKeyPackage, g.CipherSuite().Name(), FormatKey(user))
		}
		return nil, nil, fmt.Errorf("%w: the node has none for %s (has the peer registered?)", ErrNoKeyPackage, FormatKey(user))
	}
	return kps, devs, nil
}

// ownDeviceKeyPackages fetches KeyPackages for this person's other
// devices not yet in g (self is this device). A device without one is
// left out (it is added when it is next seen, or by the device that
// linked it).
func (b *Backend) ownDeviceKeyPackages(ctx context.Context, c *nodeclient.Client, g *mls.Group, user, self ed25519.PublicKey) ([]*mls.KeyPackage, [][]byte, error) {
	l, err := b.fetchDeviceList(ctx, c, user)
	if err != nil {
		return nil, nil, err
	}
	var kps []*mls.KeyPackage
	var devs [][]byte
	for _, d := range l.Devices {
		if d.Equal(self) {
			continue
		}
		if _, ok := memberByDevice(g, d); ok {
			continue
		}
		kp, err := b.fetchDeviceKeyPackage(ctx, c, g, user, d)
		if errors.Is(err, ErrNoKeyPackage) {
			b.log.Info("own device left out: no KeyPackage", "device", FormatKey(d))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		kps, devs = append(kps, kp), append(devs, bytes.Clone(d))
	}
	return kps, devs, nil
}

// fetchDeviceKeyPackages fetches KeyPackages for devices, each a leaf of
// old keeping the user it had there (a recovery's roster, recover.go).
func (b *Backend) fetchDeviceKeyPackages(ctx context.Context, c *nodeclient.Client, g, old *mls.Group, devices [][]byte) ([]*mls.KeyPackage, [][]byte, error) {
	var kps []*mls.KeyPackage
	var devs [][]byte
	for _, d := range devices {
		m, ok := memberByDevice(old, d)
		if !ok {
			return nil, nil, fmt.Errorf("%w: device %s is not in group %x", ErrInvalidArgument, FormatKey(d), old.GroupID())
		}
		user := userOf(m)
		if user == nil {
			return nil, nil, fmt.Errorf("%w: device %s of group %x speaks for nobody", ErrIdentityMismatch, FormatKey(d), old.GroupID())
		}
		kp, err := b.fetchDeviceKeyPackage(ctx, c, g, user, d)
		if err != nil {
			return nil, nil, err
		}
		kps, devs = append(kps, kp), append(devs, bytes.Clone(d))
	}
	return kps, devs, nil
}

// refusalEvent is the refusal event of an invitation of user into g.
func refusalEvent(g *mls.Group, user ed25519.PublicKey, err error) store.Event {
	return store.Event{GroupID: g.GroupID(), Member: user, Detail: err.Error()}
}

// ownDevicesIntent adds this person's other devices not yet in the group
// (nothing to commit when there are none).
func (b *Backend) ownDevicesIntent() commitIntent {
	return func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error) {
		own, _ := g.Member(g.OwnLeaf())
		me := userOf(own)
		if me == nil {
			return nil, nil, nil
		}
		kps, to, err := b.ownDeviceKeyPackages(ctx, c, g, me, self)
		if err != nil || len(kps) == 0 {
			return nil, nil, err
		}
		return b.addDevices(ctx, g, kps, to)
	}
}
