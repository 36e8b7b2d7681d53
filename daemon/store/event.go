package store

import (
	"fmt"
	"time"
)

// EventKind names what an event records.
type EventKind string

// Event kinds.
const (
	EventMessage       EventKind = "message"        // GroupID, MessageSeq
	EventMemberAdded   EventKind = "member_added"   // GroupID, Member, By, Epoch
	EventMemberRemoved EventKind = "member_removed" // GroupID, Member, By, Epoch

	// MemberDevice is the State of an EventMemberAdded or
	// EventMemberRemoved that changed only a device of a person who was
	// and stays a member (Member the person, Detail the device key, hex).
	MemberDevice              = "device"
	EventJoined     EventKind = "joined"     // GroupID, Epoch
	EventLeft       EventKind = "left"       // GroupID
	EventConnection EventKind = "connection" // State, Detail
	// EventRejected records a received envelope that can never apply:
	// GroupID (when known), By (the sender), MessageSeq (the node queue
	// sequence number), Detail (why).
	EventRejected EventKind = "rejected"
	// EventRefused records what the trust policy refused: a leaf whose
	// credential is not its signature key's (a substituted KeyPackage, an
	// impersonating Add, UpdatePath or resync), a proposal or commit a
	// member may not make. GroupID (when known), Member (whom the leaf
	// claimed to be), By (who sent it, when known), Epoch, Detail (why).
	EventRefused EventKind = "refused"
	// EventRequest: an invitation from a non-contact waits for consent:
	// MessageSeq (the request id), By (the inviter).
	EventRequest EventKind = "request"
	// EventContactKeyChanged: a contact's name now has another key: State
	// (the name), By (the old key), Member (the new key).
	EventContactKeyChanged EventKind = "contact_key_changed"
	// EventFork: a member's epoch authenticator differs from ours:
	// GroupID, Member, Epoch.
	EventFork EventKind = "fork"
	// EventEdited: the author edited a message: GroupID, MessageSeq (the
	// edited message), By.
	EventEdited EventKind = "edited"
	// EventDeleted: the author deleted a message: GroupID, MessageSeq, By.
	EventDeleted EventKind = "deleted"
	// EventReceipt: a member received or read a message: GroupID,
	// MessageSeq (the message), Member, State ("delivered" or "read").
	EventReceipt EventKind = "receipt"
	// EventTimer: a member set the group's disappearing-messages timer:
	// GroupID, By, State (the timer in seconds, "0": off).
	EventTimer EventKind = "timer"
	// EventRecovery: a member's commit the node accepted cannot be applied,
	// so the group moves to a successor without it: GroupID (the stuck
	// group), By (the offender, who signed the commit), Member (the member
	// expected to create the successor), Epoch (the last shared epoch),
	// Detail (why).
	EventRecovery EventKind = "recovery"
	// EventRecovered: the group now lives on in its successor: GroupID
	// (the successor), State (the old group's id, hex), By (the offender
	// left out), Member (the member that created the successor), Epoch
	// (the successor's).
	EventRecovered EventKind = "recovered"
	// EventDevice: a device of a person was linked or revoked: Member
	// (the person's identity key), By (the device key), State ("linked"
	// or "revoked"), Detail ("own" for this person's own devices).
	EventDevice EventKind = "device"
)

func (k EventKind) valid() bool {
	switch k {
	case EventMessage, EventMemberAdded, EventMemberRemoved, EventJoined, EventLeft, EventConnection, EventRejected, EventRefused,
		EventRequest, EventContactKeyChanged, EventFork, EventEdited, EventDeleted, EventReceipt, EventTimer,
		EventRecovery, EventRecovered, EventDevice:
		return true
	}
	return false
}

// Event is one entry of the event log. Seq is assigned on append, strictly
// increasing and never reused, so it serves as a durable cursor.
type Event struct {
	Seq        uint64
	At         time.Time
	Kind       EventKind
	GroupID    []byte
	MessageSeq uint64
	Member     []byte
	By         []byte
	Epoch      uint64
	State      string
	Detail     string
}

// AppendEvent adds an event to the log and returns it with Seq and At set.
func (tx *Tx) AppendEvent(e Event) (Event, error) {
	if !e.Kind.valid() {
		return Event{}, fmt.Errorf("store: append event: %w: kind %q", ErrInvalid, e.Kind)
	}
	if e.At.IsZero() {
		e.At = tx.now
	}
	res, err := tx.exec(`INSERT INTO events (at, kind, group_id, message_seq, member, by_member, epoch, state, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		unixNano(e.At), string(e.Kind), e.GroupID, int64(e.MessageSeq), e.Member, e.By, int64(e.Epoch), e.State, e.Detail)
	if err != nil {
		return Event{}, fmt.Errorf("store: append event: %w", err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return Event{}, fmt.Errorf("store: append event: %w", err)
	}
	e.Seq = uint64(seq)
	return e, nil
}

// EventsAfter returns up to limit events with Seq > after, oldest first.
func (tx *Tx) EventsAfter(after uint64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 256
	}
	rows, err := tx.query(`SELECT seq, at, kind, group_id, message_seq, member, by_member, epoch, state, detail
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var seq, at, mseq, epoch int64
		var kind string
		if err := rows.Scan(&seq, &at, &kind, &e.GroupID, &mseq, &e.Member, &e.By, &epoch, &e.State, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		e.Seq, e.At, e.Kind, e.MessageSeq, e.Epoch = uint64(seq), fromUnixNano(at), EventKind(kind), uint64(mseq), uint64(epoch)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return out, nil
}

// EventHead is the newest event's Seq (0 when the log is empty). It counts
// sequence numbers ever assigned, so it never goes back.
func (tx *Tx) EventHead() (uint64, error) {
	var n int64
	err := tx.queryRow(`SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: event head: %w", err)
	}
	return uint64(n), nil
}
