package backend

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/link"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file is the primary's consent: a link request is shown to the
// user (the new device's key and label) and only a yes certifies it.
// Whoever types the code first is otherwise the person's new device.

// LinkConsentWait is how long the primary waits for its user's answer; no
// answer is a refusal.
const LinkConsentWait = 90 * time.Second

// ErrLinkRefused: the primary's user said no, or did not answer in time
// (on the primary), or the primary refused (on the new device).
var ErrLinkRefused = errors.New("link refused on the primary device")

// linkConsent reports req to step and waits for its answer; a refusal
// (any error) is sealed into the response box for the new device, which
// then stores nothing.
func (b *Backend) linkConsent(ctx context.Context, c *nodeclient.Client, keys *link.Keys, slot []byte, req *link.Request, step func(LinkStep) error) error {
	dev := DeviceEntry{Key: req.Device, Name: req.Name}
	b.log.Info("link request", "device", FormatKey(req.Device), "name", req.Name)
	err := step(LinkStep{Request: &dev})
	if err == nil {
		return nil
	}
	body, serr := link.MarshalRefusal(req.Device)
	var sealed []byte
	if serr == nil {
		sealed, serr = keys.Seal(link.BoxResponse, body)
	}
	if serr == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		serr = c.LinkPut(pctx, slot, link.BoxResponse, sealed)
		cancel()
	}
	if serr != nil {
		b.log.Warn("send link refusal", "err", serr)
	}
	b.log.Info("link refused", "device", FormatKey(req.Device), "reason", err)
	if errors.Is(err, ErrLinkRefused) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrLinkRefused, err)
}

// withdrawLinked publishes list without device, one version up: the
// device was listed but its response did not reach the node.
func (b *Backend) withdrawLinked(ctx context.Context, c *nodeclient.Client, user *devid.User, list *devid.DeviceList, device ed25519.PublicKey) error {
	next := &devid.DeviceList{User: user.PublicKey(), Version: list.Version + 1, Created: time.Now()}
	for _, d := range list.Devices {
		if !d.Equal(device) {
			next.Devices = append(next.Devices, d)
		}
	}
	signed, err := next.Sign(user.Key)
	if err != nil {
		return fmt.Errorf("backend: sign device list: %w", err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := c.PublishDevices(wctx, signed); err != nil {
		return fmt.Errorf("%w: publish the device list: %w", ErrNotConnected, err)
	}
	b.notePublished(ctx, next)
	b.log.Warn("linked device withdrawn: its response did not reach the node", "device", FormatKey(device), "list_version", next.Version)
	return nil
}
