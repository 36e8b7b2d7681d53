package backend

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"unicode/utf8"
)

// The group operations below need the MLS group state machine. Until it is
// wired in they check their arguments and return ErrUnimplemented; they
// never pretend to have done anything.

// Limits on what a user may send or name.
const (
	MaxTextSize      = 64 << 10 // bytes of one message
	MaxGroupNameSize = 256      // bytes of a group name
)

func mlsGroupsMissing(op string) error {
	return fmt.Errorf("%s: %w: MLS groups are not wired into qpd yet", op, ErrUnimplemented)
}

// requireIdentity checks that the user is registered.
func (b *Backend) requireIdentity(ctx context.Context) error {
	_, err := b.identity(ctx)
	return err
}

// CreateGroup creates a group named name with the user as its only member.
func (b *Backend) CreateGroup(ctx context.Context, name string) error {
	if name == "" || len(name) > MaxGroupNameSize || !utf8.ValidString(name) {
		return fmt.Errorf("%w: a group name is 1 to %d bytes of UTF-8", ErrInvalidArgument, MaxGroupNameSize)
	}
	if err := b.requireIdentity(ctx); err != nil {
		return err
	}
	return mlsGroupsMissing("create group")
}

// Invite adds peers to a group in one commit.
func (b *Backend) Invite(ctx context.Context, group string, peers []ed25519.PublicKey) error {
	if len(peers) == 0 {
		return fmt.Errorf("%w: no peer keys", ErrInvalidArgument)
	}
	if _, err := b.ResolveGroup(ctx, group); err != nil {
		return err
	}
	return mlsGroupsMissing("invite")
}

// Join processes pending Welcome messages.
func (b *Backend) Join(ctx context.Context) error {
	if err := b.requireIdentity(ctx); err != nil {
		return err
	}
	return mlsGroupsMissing("join")
}

// Members lists a group's members.
func (b *Backend) Members(ctx context.Context, group string) error {
	if _, err := b.ResolveGroup(ctx, group); err != nil {
		return err
	}
	return mlsGroupsMissing("members")
}

// Send encrypts text to a group and queues it in the outbox.
func (b *Backend) Send(ctx context.Context, group, text string, clientMsgID []byte) error {
	if text == "" {
		return fmt.Errorf("%w: empty message", ErrInvalidArgument)
	}
	if len(text) > MaxTextSize {
		return fmt.Errorf("%w: message of %d bytes, limit %d", ErrInvalidArgument, len(text), MaxTextSize)
	}
	if len(clientMsgID) > 64 {
		return fmt.Errorf("%w: client message id longer than 64 bytes", ErrInvalidArgument)
	}
	if _, err := b.ResolveGroup(ctx, group); err != nil {
		return err
	}
	return mlsGroupsMissing("send")
}

// Remove removes a member from a group.
func (b *Backend) Remove(ctx context.Context, group string, peer ed25519.PublicKey) error {
	if _, err := b.ResolveGroup(ctx, group); err != nil {
		return err
	}
	return mlsGroupsMissing("remove")
}

// Leave leaves a group.
func (b *Backend) Leave(ctx context.Context, group string) error {
	if _, err := b.ResolveGroup(ctx, group); err != nil {
		return err
	}
	return mlsGroupsMissing("leave")
}

// Update rotates the user's own keys in one group, or in all when group is
// empty.
func (b *Backend) Update(ctx context.Context, group string) error {
	if group != "" {
		if _, err := b.ResolveGroup(ctx, group); err != nil {
			return err
		}
	} else if err := b.requireIdentity(ctx); err != nil {
		return err
	}
	return mlsGroupsMissing("update")
}
