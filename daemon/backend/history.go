package backend

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// MaxWait bounds how long Messages waits for an unread message.
const MaxWait = 10 * time.Minute

// GroupInfo is a group as listed to API clients.
type GroupInfo struct {
	store.Group
	Unread  uint64
	LastSeq uint64
	// MemberCount is 0 when the MLS group state cannot be read.
	MemberCount int
	// Suite is the group's MLS cipher suite (0 when the state cannot be
	// read).
	Suite mls.CipherSuite
	// DirectPeer is the other person of a direct chat (direct.go), and
	// DirectPeerName their contact name; MergedInto is the direct chat a
	// merged one lives on in.
	DirectPeer     []byte
	DirectPeerName string
	MergedInto     []byte
}

// ResolveGroup finds a group by its hex id or, failing that, by a unique
// name.
func (b *Backend) ResolveGroup(ctx context.Context, ref string) (store.Group, error) {
	var g store.Group
	err := b.view(ctx, func(tx *store.Tx) (err error) { g, err = resolveGroup(tx, ref); return })
	return g, err
}

func resolveGroup(tx *store.Tx, ref string) (store.Group, error) {
	if ref == "" {
		return store.Group{}, fmt.Errorf("%w: empty group", ErrInvalidArgument)
	}
	if id, err := hex.DecodeString(ref); err == nil && len(id) == store.GroupIDSize {
		g, err := tx.Group(id)
		if err == nil {
			return g, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Group{}, err
		}
	}
	gs, err := tx.GroupsByName(ref)
	if err != nil {
		return store.Group{}, err
	}
	switch len(gs) {
	case 0:
	case 1:
		return gs[0], nil
	default:
		return store.Group{}, fmt.Errorf("%w: %d groups are named %q; name one by its id", ErrAmbiguousGroup, len(gs), truncate(ref, 80))
	}
	// A prefix of a group id (at least minGroupPrefix hex digits).
	if len(ref) >= minGroupPrefix && len(ref) < 2*store.GroupIDSize && isLowerHex(ref) {
		all, err := tx.Groups(false)
		if err != nil {
			return store.Group{}, err
		}
		var match []store.Group
		for _, g := range all {
			if strings.HasPrefix(hex.EncodeToString(g.ID), ref) {
				match = append(match, g)
			}
		}
		switch len(match) {
		case 1:
			return match[0], nil
		case 0:
		default:
			return store.Group{}, fmt.Errorf("%w: %d group ids start with %s; give more of the id", ErrAmbiguousGroup, len(match), ref)
		}
	}
	return store.Group{}, fmt.Errorf("%w: %q", ErrGroupNotFound, truncate(ref, 80))
}

// minGroupPrefix is the shortest group id prefix that names a group.
const minGroupPrefix = 4

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Groups lists the groups the user is in.
func (b *Backend) Groups(ctx context.Context) ([]GroupInfo, error) {
	var out []GroupInfo
	err := b.view(ctx, func(tx *store.Tx) error {
		gs, err := tx.Groups(false)
		if err != nil {
			return err
		}
		for _, g := range gs {
			gi, err := groupInfo(tx, g)
			if err != nil {
				return err
			}
			if gi.MergedInto != nil {
				continue // lives on in another direct chat
			}
			out = append(out, gi)
		}
		return nil
	})
	if err != nil {
		return nil, opError("groups", err)
	}
	return out, nil
}

func groupInfo(tx *store.Tx, g store.Group) (GroupInfo, error) {
	gi := GroupInfo{Group: g}
	var err error
	if gi.Unread, err = tx.CountUnread(g.ID); err != nil {
		return GroupInfo{}, err
	}
	if gi.LastSeq, err = tx.LastSeq(g.ID); err != nil {
		return GroupInfo{}, err
	}
	var mg *mls.Group
	if len(g.State) > 0 {
		if mg, err = mls.UnmarshalGroup(g.State); err == nil {
			gi.MemberCount = len(mg.Members())
			gi.Suite = mg.CipherSuite()
		} else {
			mg = nil
		}
	}
	if err := directInfo(tx, &gi, mg); err != nil {
		return GroupInfo{}, err
	}
	return gi, nil
}

// MessagesQuery selects history for Messages.
type MessagesQuery struct {
	// Group is a group id (hex) or unique name; empty means all groups.
	Group      string
	After      uint64
	Limit      int
	UnreadOnly bool
	// MarkRead marks the returned messages read in the same transaction.
	MarkRead bool
	// Wait, with UnreadOnly, waits up to this long (at most MaxWait) for an
	// unread message when there is none.
	Wait time.Duration
	// NoReadReceipts marks read without sending read receipts.
	NoReadReceipts bool
	// Search keeps the messages whose text contains it (ASCII letters
	// match either case); Since those sent at or after it.
	Search string
	Since  time.Time
}

// MessagesPage is one page of history.
type MessagesPage struct {
	Messages []store.Message
	// Groups has the group of every returned message, by id (string of the
	// raw bytes).
	Groups map[string]store.Group
	// NextCursor continues the listing as MessagesQuery.After.
	NextCursor uint64
	More       bool
}

// Messages reads (and optionally marks read) stored history.
func (b *Backend) Messages(ctx context.Context, q MessagesQuery) (MessagesPage, error) {
	if q.Limit < 0 || q.Limit > store.MaxMessageQuery {
		return MessagesPage{}, fmt.Errorf("%w: limit %d is outside 0..%d", ErrInvalidArgument, q.Limit, store.MaxMessageQuery)
	}
	if q.Wait < 0 || q.Wait > MaxWait {
		return MessagesPage{}, fmt.Errorf("%w: wait %v is outside 0..%v", ErrInvalidArgument, q.Wait, MaxWait)
	}
	var deadline <-chan time.Time
	if q.UnreadOnly && q.Wait > 0 {
		t := time.NewTimer(q.Wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		changed := b.Changed()
		page, err := b.readMessages(ctx, q)
		if err != nil {
			return MessagesPage{}, err
		}
		if len(page.Messages) > 0 || deadline == nil {
			return page, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return page, nil
		case <-ctx.Done():
			return MessagesPage{}, ctx.Err()
		}
	}
}

// readMessages reads one page. With MarkRead it marks what it returns in
// the same transaction; a page with nothing to mark is read without a write
// transaction, so that waiting readers do not wake each other.
func (b *Backend) readMessages(ctx context.Context, q MessagesQuery) (MessagesPage, error) {
	page, toMark, err := b.readPage(ctx, q, b.view)
	if err == nil && q.MarkRead && toMark > 0 {
		page, _, err = b.readPage(ctx, q, b.update)
		if err == nil && !q.NoReadReceipts {
			b.sendReadReceipts(ctx, page.Messages)
		}
	}
	if err != nil {
		return MessagesPage{}, opError("messages", err)
	}
	return page, nil
}

// readPage runs one page read in run (view, or update when marking read)
// and reports how many returned messages were unread.
func (b *Backend) readPage(ctx context.Context, q MessagesQuery, run func(context.Context, func(*store.Tx) error) error) (MessagesPage, int, error) {
	page := MessagesPage{Groups: map[string]store.Group{}, NextCursor: q.After}
	var ids []int64
	err := run(ctx, func(tx *store.Tx) error {
		sq := store.MessageQuery{After: q.After, Limit: q.Limit, UnreadOnly: q.UnreadOnly, Search: q.Search, Since: q.Since}
		if q.Group != "" {
			g, err := resolveGroup(tx, q.Group)
			if err != nil {
				return err
			}
			sq.GroupID = g.ID
			page.Groups[string(g.ID)] = g
		}
		msgs, more, err := tx.Messages(sq)
		if err != nil {
			return err
		}
		page.Messages, page.More = msgs, more
		for i := range msgs {
			m := &msgs[i]
			if m.Receipts, err = tx.Receipts(m.GroupID, m.MessageID); err != nil {
				return err
			}
			if q.Group != "" {
				page.NextCursor = m.Seq
			} else {
				page.NextCursor = uint64(m.ID)
			}
			if _, ok := page.Groups[string(m.GroupID)]; !ok {
				g, err := tx.Group(m.GroupID)
				if err != nil {
					return err
				}
				page.Groups[string(m.GroupID)] = g
			}
			if !m.Read {
				ids = append(ids, m.ID)
			}
		}
		if q.MarkRead && len(ids) > 0 && !tx.ReadOnly() {
			return tx.MarkRead(ids)
		}
		return nil
	})
	return page, len(ids), err
}

// Event is a logged event with what it refers to.
type Event struct {
	store.Event
	// Message is set for EventMessage.
	Message *store.Message
	// Group is set for events about a group.
	Group *store.Group
	// MemberName is, for EventDevice, the contact name of the person
	// whose device it is (empty when not a contact).
	MemberName string
}

// EventHead is the newest event's sequence number.
func (b *Backend) EventHead(ctx context.Context) (uint64, error) {
	var head uint64
	err := b.view(ctx, func(tx *store.Tx) (err error) { head, err = tx.EventHead(); return })
	if err != nil {
		return 0, fmt.Errorf("backend: event head: %w", err)
	}
	return head, nil
}

// EventsAfter returns up to limit events with Seq > after, oldest first,
// each with the message or group it refers to.
func (b *Backend) EventsAfter(ctx context.Context, after uint64, limit int) ([]Event, error) {
	var out []Event
	err := b.view(ctx, func(tx *store.Tx) error {
		evs, err := tx.EventsAfter(after, limit)
		if err != nil {
			return err
		}
		for _, e := range evs {
			ev := Event{Event: e}
			if len(e.GroupID) > 0 {
				g, err := tx.Group(e.GroupID)
				switch {
				case err == nil:
					ev.Group = &g
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
			}
			switch e.Kind {
			case store.EventMessage, store.EventEdited, store.EventDeleted, store.EventReceipt:
				m, err := tx.Message(e.GroupID, e.MessageSeq)
				if err == nil {
					m.Receipts, err = tx.Receipts(m.GroupID, m.MessageID)
				}
				switch {
				case err == nil:
					ev.Message = &m
				case e.Kind == store.EventMessage || !errors.Is(err, store.ErrNotFound):
					return err
				}
			}
			if e.Kind == store.EventDevice && len(e.Member) > 0 {
				// The name as it is now, not as it was then.
				c, err := tx.Contact(e.Member)
				switch {
				case err == nil:
					ev.MemberName = c.Name
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backend: events: %w", err)
	}
	return out, nil
}
