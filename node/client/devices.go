package client

import (
	"bytes"
	"context"

	"github.com/quicproquo/quicproquo/schemas/devices"
)

// This file is the device half of the node protocol: a user's signed
// device list, one KeyPackage per device, and the link rendezvous (see
// schemas/devices/devices.capnp and internal/devid).

// DevicePackage is one device's KeyPackage in FetchUserKeyPackages.
type DevicePackage struct {
	Device  []byte // the device's signature key (its queue address)
	Package []byte // an RFC 9420 KeyPackage
	Peeked  bool   // not consumed (a peek, or the device's last-resort package)
}

// Link boxes: the request a new device puts for the opener, and the
// opener's response.
const (
	LinkRequest  uint8 = 0
	LinkResponse uint8 = 1
)

// PublishDevices stores list (a devid DeviceList signed by its user) at
// the node and returns the version the node keeps. Devices the previous
// list had and list lacks are revoked for ever.
func (c *Client) PublishDevices(ctx context.Context, list []byte) (uint64, error) {
	const op = "publish devices"
	fut, release := c.node.PublishDevices(ctx, func(p devices.DeviceService_publishDevices_Params) error {
		return p.SetList(list)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return 0, callError(op, err)
	}
	res, err := fut.Struct()
	if err != nil {
		return 0, callError(op, err)
	}
	return res.Version(), nil
}

// FetchDevices returns user's signed device list as the node keeps it,
// nil if the user never published one (its devices are then the one key
// user). The caller checks the list (devid.ParseDeviceList and its user).
func (c *Client) FetchDevices(ctx context.Context, user []byte) ([]byte, error) {
	const op = "fetch devices"
	fut, release := c.node.FetchDevices(ctx, func(p devices.DeviceService_fetchDevices_Params) error {
		return p.SetUserKey(user)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, callError(op, err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, callError(op, err)
	}
	l, err := res.List()
	if err != nil {
		return nil, callError(op, err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return bytes.Clone(l), nil
}

// FetchUserKeyPackages takes one KeyPackage of cipher suite 1 for each of
// user's current devices (consumed like FetchKeyPackage; with peek, only
// looked at) and returns them with the user's signed list (nil without
// one). A device with no package left is missing from the result. The
// node is not trusted for any of it: check the list's signature, that
// each package's credential is of user and that its device is listed.
func (c *Client) FetchUserKeyPackages(ctx context.Context, user []byte, peek bool) ([]DevicePackage, []byte, error) {
	return c.FetchUserKeyPackagesSuite(ctx, user, 1, peek)
}

// FetchUserKeyPackagesSuite is FetchUserKeyPackages for cipher suite suite.
func (c *Client) FetchUserKeyPackagesSuite(ctx context.Context, user []byte, suite uint16, peek bool) ([]DevicePackage, []byte, error) {
	const op = "fetch user key packages"
	fut, release := c.node.FetchUserKeyPackages(ctx, func(p devices.DeviceService_fetchUserKeyPackages_Params) error {
		p.SetCipherSuite(suite)
		p.SetPeek(peek)
		return p.SetUserKey(user)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, nil, callError(op, err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, nil, callError(op, err)
	}
	pl, err := res.Packages()
	if err != nil {
		return nil, nil, callError(op, err)
	}
	out := make([]DevicePackage, 0, pl.Len())
	for i := 0; i < pl.Len(); i++ {
		e := pl.At(i)
		d, err := e.DeviceKey()
		if err != nil {
			return nil, nil, callError(op, err)
		}
		p, err := e.Package()
		if err != nil {
			return nil, nil, callError(op, err)
		}
		out = append(out, DevicePackage{Device: bytes.Clone(d), Package: bytes.Clone(p), Peeked: e.Peeked()})
	}
	l, err := res.List()
	if err != nil {
		return nil, nil, callError(op, err)
	}
	var list []byte
	if len(l) > 0 {
		list = bytes.Clone(l)
	}
	return out, list, nil
}

// LinkOpen opens the link slot slot (32 bytes) with this connection's
// identity as its opener, for the node's link TTL (10 minutes).
func (c *Client) LinkOpen(ctx context.Context, slot []byte) error {
	const op = "link open"
	fut, release := c.node.LinkOpen(ctx, func(p devices.DeviceService_linkOpen_Params) error {
		return p.SetSlot(slot)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err == nil {
		_, err = fut.Struct()
	}
	return callError(op, err)
}

// LinkPut puts payload in box (LinkRequest or LinkResponse) of slot; each
// box takes one payload.
func (c *Client) LinkPut(ctx context.Context, slot []byte, box uint8, payload []byte) error {
	const op = "link put"
	fut, release := c.node.LinkPut(ctx, func(p devices.DeviceService_linkPut_Params) error {
		p.SetBox(box)
		if err := p.SetSlot(slot); err != nil {
			return err
		}
		return p.SetPayload(payload)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err == nil {
		_, err = fut.Struct()
	}
	return callError(op, err)
}

// LinkGet returns the payload in box of slot, nil while there is none.
func (c *Client) LinkGet(ctx context.Context, slot []byte, box uint8) ([]byte, error) {
	const op = "link get"
	fut, release := c.node.LinkGet(ctx, func(p devices.DeviceService_linkGet_Params) error {
		p.SetBox(box)
		return p.SetSlot(slot)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return nil, callError(op, err)
	}
	res, err := fut.Struct()
	if err != nil {
		return nil, callError(op, err)
	}
	p, err := res.Payload()
	if err != nil {
		return nil, callError(op, err)
	}
	if len(p) == 0 {
		return nil, nil
	}
	return bytes.Clone(p), nil
}

// LinkClose removes slot (its opener only).
func (c *Client) LinkClose(ctx context.Context, slot []byte) error {
	const op = "link close"
	fut, release := c.node.LinkClose(ctx, func(p devices.DeviceService_linkClose_Params) error {
		return p.SetSlot(slot)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err == nil {
		_, err = fut.Struct()
	}
	return callError(op, err)
}
