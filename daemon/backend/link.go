package backend

import (
	"context"
	"fmt"
	"time"
)

// This file is linking a device (internal/link) on both sides.

// Link bounds.
const (
	// LinkTTL is how long a code is valid (the node's slot TTL).
	LinkTTL = 10 * time.Minute
	// AcceptWait is how long AcceptLink waits for the primary by default.
	AcceptWait = 2 * time.Minute
	// linkPoll is how often a side looks for the other's message.
	linkPoll = 250 * time.Millisecond
)

// Link runs the primary's side: a code (reported to step), the new
// device's request, its certificate and the device list with it, the
// response, and then an Add of it in every group.
func (b *Backend) Link(ctx context.Context, timeout time.Duration, step func(LinkStep) error) (*LinkResult, error) {
	return nil, fmt.Errorf("%w: linking needs the device identity model", ErrUnimplemented)
}

// AcceptLink runs the new device's side with code; name labels it.
func (b *Backend) AcceptLink(ctx context.Context, code, name string, timeout time.Duration) (*AcceptedLink, error) {
	return nil, fmt.Errorf("%w: linking needs the device identity model", ErrUnimplemented)
}

// Devices lists the person's devices.
func (b *Backend) Devices(ctx context.Context) (*DevicesInfo, error) {
	return nil, fmt.Errorf("%w: devices need the device identity model", ErrUnimplemented)
}

// RevokeDevice revokes the device named by key or key prefix.
func (b *Backend) RevokeDevice(ctx context.Context, device string) (*RevokeResult, error) {
	return nil, fmt.Errorf("%w: revoking needs the device identity model", ErrUnimplemented)
}
