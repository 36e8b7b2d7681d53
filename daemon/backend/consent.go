package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
	"golang.org/x/time/rate"
)

// This file is consent: nobody joins the user to a group without asking.
//
// A Welcome from a contact joins at once (or waits for Join with
// Config.ManualJoin). A Welcome from anyone else is a request: it is kept,
// unread, in a bounded inbox (MaxRequests, MaxRequestBytes) until the user
// accepts (AcceptRequest), declines (DeclineRequest) or blocks the inviter
// (Block). A Welcome that names none of this user's KeyPackages is dropped
// before it is stored, and so is one that does not fit the inbox: a
// stranger costs at most the inbox's bound, however much it sends. The
// inviter shown is the identity the node authenticated as the envelope's
// sender.
//
// A blocked identity's envelopes are dropped before they are parsed (the
// node cursor moves past them; nothing is stored). Rejected envelopes of
// strangers are recorded as events at most strangerRejectBurst at once and
// strangerRejectRate per second, and only logged beyond that.

// InvitePolicy says whose Welcomes qpd takes without asking.
type InvitePolicy int

// Invitation policies.
const (
	// InviteContacts: contacts' Welcomes join; the others are requests.
	InviteContacts InvitePolicy = iota
	// InviteAnyone: every Welcome joins (or waits for Join), as if every
	// inviter were a contact.
	InviteAnyone
)

// Bounds of the request inbox.
const (
	MaxRequests     = 100
	MaxRequestBytes = 8 << 20
	// MaxRequestSize bounds one stored request (a Welcome with the
	// group's ratchet tree).
	MaxRequestSize = 1 << 20
)

// Bounds of the rejected events strangers cause.
const (
	strangerRejectRate  = rate.Limit(1)
	strangerRejectBurst = 20
)

// ErrRequestNotFound: no waiting invitation has that id.
var ErrRequestNotFound = errors.New("invitation request not found")

// handleWelcome routes an arriving Welcome by the consent rules.
func (b *Backend) handleWelcome(tx *store.Tx, env nodeclient.Envelope) error {
	_, refs, err := mls.WelcomeKeyPackageRefs(env.Payload)
	if err != nil {
		return reject("welcome: %v", err)
	}
	// A recovery Welcome (recover.go) needs no consent and no Join call,
	// but only the one this member expects: while a recovery is open,
	// Welcomes are read at once, and joinWelcome checks it.
	if open, err := tx.OpenRecoveries(); err != nil {
		return err
	} else if len(open) > 0 && isSuccessorWelcome(tx, env.Payload) {
		return b.joinWelcome(tx, env.Payload, env.Sender)
	}
	// The node names the inviting device; the person is what that
	// device's leaf in the group speaks for. A Welcome from another device
	// of this person is taken without asking, one from a contact's device
	// as from the contact.
	inviter := env.Sender
	if g, _, err := openWelcome(tx, env.Payload); err == nil {
		inviter = welcomeInviter(g, env.Sender)
	}
	if b.isBlocked(inviter) {
		return reject("welcome from a device of blocked %s", FormatKey(inviter))
	}
	trusted := b.cfg.Invitations == InviteAnyone
	if !trusted {
		self, err := tx.Identity()
		if err != nil {
			return err
		}
		trusted = bytes.Equal(inviter, self.UserPublicKey())
		self.Wipe()
	}
	if !trusted {
		if trusted, err = isContact(tx, inviter); err != nil {
			return err
		}
	}
	switch {
	case !trusted:
		return b.holdRequest(tx, env, refs)
	case b.cfg.ManualJoin:
		_, err := tx.AddWelcome(store.Welcome{Payload: env.Payload, Sender: env.Sender})
		return err
	}
	return b.joinWelcome(tx, env.Payload, env.Sender)
}

// holdRequest keeps a stranger's Welcome in the request inbox, if it is
// for one of this user's KeyPackages and fits.
func (b *Backend) holdRequest(tx *store.Tx, env nodeclient.Envelope, refs []mls.KeyPackageRef) error {
	mine := false
	for _, ref := range refs {
		if _, err := tx.KeyPackage(ref); err == nil {
			mine = true
			break
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if !mine {
		return reject("welcome for none of this user's KeyPackages")
	}
	n, size, err := tx.CountRequests()
	if err != nil {
		return err
	}
	if len(env.Payload) > MaxRequestSize || n >= MaxRequests || size+int64(len(env.Payload)) > MaxRequestBytes {
		b.log.Warn("invitation request dropped: the request inbox is full", "inviter", FormatKey(env.Sender),
			"requests", n, "bytes", size, "size", len(env.Payload))
		return nil
	}
	w, err := tx.AddWelcome(store.Welcome{Payload: env.Payload, Sender: env.Sender, Request: true})
	if err != nil {
		return err
	}
	by := env.Sender
	if g, _, err := openWelcome(tx, env.Payload); err == nil {
		by = welcomeInviter(g, env.Sender)
	}
	_, err = tx.AppendEvent(store.Event{Kind: store.EventRequest, MessageSeq: uint64(w.ID), By: by})
	return err
}

// welcomeInviter is the person whose device (the envelope's sender, as
// the node authenticated it) sent a Welcome into g: the user its leaf
// speaks for, or the device key itself when it has no leaf in g.
func welcomeInviter(g *mls.Group, device []byte) []byte {
	if m, ok := memberByDevice(g, device); ok {
		if u := userOf(m); u != nil {
			return u
		}
	}
	return device
}

// Request is an invitation waiting for consent, with what its Welcome
// says (when it can be read).
type Request struct {
	ID         int64
	Inviter    []byte
	ReceivedAt time.Time
	Size       int
	// GroupID, GroupName and Members are read from the Welcome; Problem
	// says why not when they are empty.
	GroupID   []byte
	GroupName string
	Members   int
	Problem   string
}

// Requests lists the invitations waiting for consent.
func (b *Backend) Requests(ctx context.Context) ([]Request, error) {
	var out []Request
	err := b.view(ctx, func(tx *store.Tx) error {
		ws, err := tx.Requests()
		if err != nil {
			return err
		}
		for _, w := range ws {
			r := Request{ID: w.ID, Inviter: w.Sender, ReceivedAt: w.ReceivedAt, Size: len(w.Payload)}
			g, _, err := openWelcome(tx, w.Payload)
			if err != nil {
				r.Problem = err.Error()
			} else {
				r.Inviter = welcomeInviter(g, w.Sender)
				r.GroupID, r.GroupName, r.Members = g.GroupID(), groupName(g), len(people(g))
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backend: requests: %w", err)
	}
	return out, nil
}

// AcceptRequest joins the group of a waiting invitation; with contactName
// the inviter also becomes a contact under that name.
func (b *Backend) AcceptRequest(ctx context.Context, id int64, contactName string) (GroupInfo, error) {
	if contactName != "" && !validContactName(contactName) {
		return GroupInfo{}, fmt.Errorf("%w: contact name %q", ErrInvalidArgument, truncate(contactName, 80))
	}
	var gi GroupInfo
	var inviter []byte
	b.gmu.Lock()
	err := b.update(ctx, func(tx *store.Tx) error {
		w, err := tx.Request(id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %d", ErrRequestNotFound, id)
		}
		if err != nil {
			return err
		}
		inviter = w.Sender
		if g, _, err := openWelcome(tx, w.Payload); err == nil {
			inviter = welcomeInviter(g, w.Sender)
		}
		gid, err := b.joinWelcomeID(tx, w.Payload, w.Sender)
		if err != nil {
			return err
		}
		if err := tx.DeleteWelcome(w.ID); err != nil {
			return err
		}
		if err := tx.MarkJoinReported(gid); err != nil {
			return err
		}
		g, err := tx.Group(gid)
		if err != nil {
			return err
		}
		gi, err = groupInfo(tx, g)
		return err
	})
	b.gmu.Unlock()
	if errors.Is(err, ErrRejectEnvelope) {
		// It can never apply (its KeyPackage is gone, the group is joined
		// already): it is removed.
		if derr := b.DeclineRequest(ctx, id); derr != nil {
			b.log.Warn("remove request", "id", id, "err", derr)
		}
		return GroupInfo{}, fmt.Errorf("backend: accept request %d: %w: %w", id, ErrInvalidArgument, err)
	}
	if err != nil {
		return GroupInfo{}, fmt.Errorf("backend: accept request %d: %w", id, err)
	}
	if contactName != "" {
		if _, _, err := b.AddContact(ctx, inviter, contactName); err != nil {
			return gi, err
		}
	}
	return gi, nil
}

// DeclineRequest deletes a waiting invitation.
func (b *Backend) DeclineRequest(ctx context.Context, id int64) error {
	err := b.update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Request(id); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %d", ErrRequestNotFound, id)
		} else if err != nil {
			return err
		}
		return tx.DeleteWelcome(id)
	})
	if err != nil {
		return fmt.Errorf("backend: decline request: %w", err)
	}
	return nil
}

// recordReject reports whether a rejected envelope is recorded as an
// event: always for contacts and members of the group it names, within
// the strangers' budget for anyone else.
func (b *Backend) recordReject(tx *store.Tx, env nodeclient.Envelope) bool {
	if ok, err := isContact(tx, env.Sender); err == nil && ok {
		return true
	}
	if hdr, err := mls.PeekMessage(env.Payload); err == nil && len(hdr.GroupID) > 0 {
		if _, g, err := loadGroup(tx, hdr.GroupID); err == nil {
			if _, ok := memberByDevice(g, env.Sender); ok {
				return true
			}
		}
	}
	return b.strangerRejects.Allow()
}
