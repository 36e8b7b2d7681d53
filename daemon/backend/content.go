package backend

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
)

// This file is what members say to each other: internal/content messages
// (a MIMI subset in CBOR) inside MLS application messages, and what each
// does to the history of every member.
//
// Application message content, inside the MLS PrivateMessage:
//
//	version 1: uint8 1, uint64 sent_at, text                        (read)
//	version 2: uint8 2, uint64 sent_at, uint8 16, auth[16], text    (read)
//	version 3: uint8 3, uint8 16, auth[16], content                 (written)
//
// auth is the first 16 bytes of the sender's epoch authenticator (fork.go),
// content an internal/content message with the sender's time in it.
// Versions 1 and 2 read as text messages.
//
// What each kind does, on the sender and on every receiver alike:
//   - text, reply (InReplyTo), reaction (InReplyTo): a history entry;
//   - edit and delete (Replaces): change the named message in place, only
//     if the sender is its author; anyone else's edit or delete is
//     rejected (an event says so) and changes nothing. The old text
//     leaves the file (secure_delete, scrub);
//   - receipt: each member's delivered or read state of a message, kept
//     per member; delivery receipts go out as a message arrives, read
//     receipts as it is marked read, unless Config.NoReceipts;
//   - timer: sets the group's disappearing-messages timer, kept only in
//     each member's local group row (never in the MLS group context the
//     node reads); from then on messages carry MIMI's expires and each
//     member deletes them at that time (expire.go);
//   - anything else (attachments, unknown parts, a later version's
//     kinds): a history entry whose text says what it holds.
const appContentV3 = 3

// Errors of the content operations.
var (
	// ErrMessageNotFound: no message of the group matches the reference.
	ErrMessageNotFound = errors.New("message not found")
	// ErrNotAuthor: only a message's author may edit or delete it.
	ErrNotAuthor = errors.New("only the author of a message may edit or delete it")
)

// maxReaction bounds a reaction's text in bytes.
const maxReaction = 64

// appendContent is the version 3 content of m with the sender's epoch
// authenticator.
func appendContent(m *content.Message, auth []byte) ([]byte, error) {
	if len(auth) < appAuthSize {
		return nil, fmt.Errorf("application content: epoch authenticator of %d bytes", len(auth))
	}
	b := append([]byte{appContentV3, appAuthSize}, auth[:appAuthSize]...)
	b, err := m.Append(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return b, nil
}

// parseContent reads a received message's content of any version, with
// the sender's epoch authenticator prefix (nil in version 1).
func parseContent(b []byte) (*content.Message, []byte, error) {
	if len(b) > 0 && b[0] == appContentV3 {
		if len(b) < 2+appAuthSize || b[1] != appAuthSize {
			return nil, nil, errors.New("application content: bad epoch authenticator")
		}
		m, err := content.Parse(b[2+appAuthSize:])
		if err != nil {
			return nil, nil, fmt.Errorf("application content: %w", err)
		}
		return m, b[2 : 2+appAuthSize], nil
	}
	at, text, auth, err := parseAppContentAuth(b)
	if err != nil {
		return nil, nil, err
	}
	return &content.Message{SentAt: at, Body: content.TextPart(content.DispositionRender, text)}, auth, nil
}

// resent is the content of a history entry the user sent, built again to
// send it in another group (a recovered group's successor): text, reply,
// reaction or timer, with its time and expiry.
func resent(m store.Message) *content.Message {
	var c *content.Message
	switch m.Kind {
	case store.KindReply:
		c = content.NewReply(m.Ref, m.Text)
	case store.KindReaction:
		c = content.NewReaction(m.Ref, m.Text)
	case store.KindTimer:
		n, _ := strconv.ParseUint(m.Text, 10, 32)
		c = content.NewTimer(uint32(min(n, content.MaxTimer)))
	default:
		c = content.NewText(m.Text)
	}
	c.SentAt = m.SentAt
	if !m.ExpiresAt.IsZero() && m.ExpiresAt.Unix() > 0 && m.ExpiresAt.Unix() <= math.MaxUint32 {
		c.Expires = &content.Expiry{Seconds: uint32(m.ExpiresAt.Unix())}
	}
	return c
}

// unknownNotes is what in m this daemon does not understand, as bracketed
// notes before its text, so that nothing goes unseen.
func unknownNotes(m *content.Message, text string) string {
	var s []string
	for _, u := range m.Unknown() {
		s = append(s, "[unsupported "+u+"]")
	}
	if text != "" {
		s = append(s, text)
	}
	return strings.Join(s, " ")
}

// checkText validates a message text.
func checkText(text string) error {
	switch {
	case text == "":
		return fmt.Errorf("%w: empty message", ErrInvalidArgument)
	case len(text) > MaxTextSize:
		return fmt.Errorf("%w: message of %d bytes, limit %d", ErrInvalidArgument, len(text), MaxTextSize)
	case !utf8.ValidString(text):
		return fmt.Errorf("%w: message is not UTF-8", ErrInvalidArgument)
	}
	return nil
}

// resolveMessage finds a group's message by reference: "#N" or a decimal
// N of fewer than 8 digits is the group's message number N (its number in
// the group's order, as recv shows it); otherwise a
// message id in hex, or a prefix of one of at least 8 hex digits naming
// one message.
func resolveMessage(tx *store.Tx, groupID []byte, ref string) (store.Message, error) {
	num := strings.TrimPrefix(ref, "#")
	if n, err := strconv.ParseUint(num, 10, 64); err == nil && (num != ref || len(num) < 8) {
		m, err := tx.MessageByGroupSeq(groupID, n)
		if errors.Is(err, store.ErrNotFound) {
			return store.Message{}, fmt.Errorf("%w: no message #%d (a message shown as #? has no number yet: give its id)", ErrMessageNotFound, n)
		}
		return m, err
	}
	if len(ref) < 8 || len(ref) > 2*content.MaxMessageIDSize || !isLowerHex(ref) {
		return store.Message{}, fmt.Errorf("%w: message %q: give its number (#N) or at least 8 hex digits of its id", ErrInvalidArgument, truncate(ref, 80))
	}
	prefix := make([]byte, len(ref)/2)
	for i := range prefix {
		v, _ := strconv.ParseUint(ref[2*i:2*i+2], 16, 8)
		prefix[i] = byte(v)
	}
	ms, err := tx.MessagesByIDPrefix(groupID, prefix, 2)
	if err != nil {
		return store.Message{}, err
	}
	switch {
	case len(ms) == 0:
		return store.Message{}, fmt.Errorf("%w: no message id starts with %s", ErrMessageNotFound, ref)
	case len(ms) > 1:
		return store.Message{}, fmt.Errorf("%w: several message ids start with %s; give more of the id", ErrInvalidArgument, ref)
	}
	return ms[0], nil
}

// expiresAt is when a message of group sg sent at sentAt and received
// now disappears: the earlier of its own expires and the group's timer
// (zero: never). A sender's clock ahead of now counts as now.
func expiresAt(sg *store.Group, m *content.Message, now time.Time) time.Time {
	base := now
	if !m.SentAt.IsZero() && m.SentAt.Before(now) {
		base = m.SentAt
	}
	var at time.Time
	earliest := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if sg.DisappearAfter > 0 {
		earliest(base.Add(sg.DisappearAfter))
	}
	if e := m.Expires; e != nil {
		if e.Relative {
			earliest(base.Add(time.Duration(e.Seconds) * time.Second))
		} else {
			earliest(time.Unix(int64(e.Seconds), 0))
		}
	}
	return at
}

// applied is what applyContent did.
type applied struct {
	// Message is the new history entry, or the one edited or deleted
	// (zero for a receipt).
	Message store.Message
	// Receivable: a message the other members send delivery and read
	// receipts of.
	Receivable bool
}

// applyContent applies one content message of sender (the user's own when
// outgoing) with message id id to group sg's history, in tx; groupSeq is
// its number in the group's order (0: not known yet). An edit or
// delete of another member's message is ErrNotAuthor and changes nothing.
func applyContent(tx *store.Tx, sg *store.Group, m *content.Message, id, sender []byte, dev sendingDevice, outgoing bool, groupSeq uint64) (applied, error) {
	now := tx.Now()
	sentAt := m.SentAt
	if sentAt.IsZero() {
		sentAt = now
	}
	entry := store.Message{GroupID: sg.ID, MessageID: id, Sender: sender, SentAt: sentAt, Read: outgoing, Outgoing: outgoing,
		ExpiresAt: expiresAt(sg, m, now), GroupSeq: groupSeq, SenderDevice: dev.key, SenderDeviceName: dev.name}
	receivable := false
	var refs [][]byte // attachment references
	switch m.Kind() {
	case content.KindText:
		entry.Text = unknownNotes(m, m.Text())
		if m.InReplyTo != nil {
			entry.Kind, entry.Ref = store.KindReply, m.InReplyTo
		}
		receivable = true
	case content.KindReaction:
		entry.Kind, entry.Ref, entry.Text = store.KindReaction, m.InReplyTo, unknownNotes(m, m.Text())
	case content.KindEdit, content.KindDelete:
		return applyChange(tx, sg, m, sender)
	case content.KindReceipt:
		if !outgoing {
			return applied{}, applyReceipt(tx, sg, m.Body.Receipt, sender)
		}
		return applied{}, nil
	case content.KindTimer:
		sg.DisappearAfter = time.Duration(*m.Timer) * time.Second
		entry.Kind, entry.Text, entry.ExpiresAt = store.KindTimer, strconv.FormatUint(uint64(*m.Timer), 10), time.Time{}
		if _, err := tx.AppendEvent(store.Event{Kind: store.EventTimer, GroupID: sg.ID, By: sender, State: entry.Text}); err != nil {
			return applied{}, err
		}
	default:
		entry.Kind, entry.Text = store.KindUnknown, m.Summary()
		receivable = true
		var err error
		if refs, err = attachmentRefs(m); err != nil {
			return applied{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
	}
	if len(entry.Text) > MaxTextSize {
		return applied{}, fmt.Errorf("%w: text of %d bytes, limit %d", ErrInvalidArgument, len(entry.Text), MaxTextSize)
	}
	stored, err := tx.AppendMessage(entry)
	if errors.Is(err, store.ErrExists) {
		return applied{}, nil // already stored (sent twice): shown once
	}
	if err != nil {
		return applied{}, err
	}
	if err := tx.AddAttachments(sg.ID, stored.Seq, refs); err != nil {
		return applied{}, err
	}
	if _, err := tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: sg.ID, MessageSeq: stored.Seq}); err != nil {
		return applied{}, err
	}
	return applied{Message: stored, Receivable: receivable && !outgoing}, nil
}

// applyChange applies an edit or delete: only of the sender's own text.
// A target this member does not have (expired, or from before it joined)
// leaves nothing to change, and a deleted or expired one stays so.
func applyChange(tx *store.Tx, sg *store.Group, m *content.Message, sender []byte) (applied, error) {
	target, err := tx.MessageByID(sg.ID, m.Replaces)
	if errors.Is(err, store.ErrNotFound) {
		return applied{}, nil
	}
	if err != nil {
		return applied{}, err
	}
	if !bytes.Equal(target.Sender, sender) {
		return applied{}, fmt.Errorf("%w: %s may not change message #%d of %s", ErrNotAuthor, FormatKey(sender), target.Seq, FormatKey(target.Sender))
	}
	if target.Deleted || (target.Kind != store.KindText && target.Kind != store.KindReply && target.Kind != store.KindReaction) {
		return applied{Message: target}, nil // nothing left to change
	}
	kind := store.EventEdited
	if m.Kind() == content.KindDelete {
		kind = store.EventDeleted
		err = tx.DeleteMessageText(target.ID)
		target.Text, target.Deleted = "", true
	} else {
		text := unknownNotes(m, m.Text())
		if len(text) > MaxTextSize {
			return applied{}, fmt.Errorf("%w: text of %d bytes, limit %d", ErrInvalidArgument, len(text), MaxTextSize)
		}
		err = tx.EditMessage(target.ID, text)
		target.Text, target.EditedAt = text, tx.Now()
	}
	if err != nil {
		return applied{}, err
	}
	if _, err := tx.AppendEvent(store.Event{Kind: kind, GroupID: sg.ID, MessageSeq: target.Seq, By: sender}); err != nil {
		return applied{}, err
	}
	return applied{Message: target}, nil
}

// applyReceipt records a member's delivered and read states; states of
// messages this member does not have, and other states, are ignored.
// Of a named message only its number is read (store.ReceiptTarget).
func applyReceipt(tx *store.Tx, sg *store.Group, r *content.Receipt, member []byte) error {
	at := r.At
	if at.IsZero() || at.After(tx.Now()) {
		at = tx.Now()
	}
	for _, st := range r.Statuses {
		if st.Status != content.StatusDelivered && st.Status != content.StatusRead {
			continue
		}
		seq, err := tx.ReceiptTarget(sg.ID, st.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		changed, err := tx.PutReceipt(sg.ID, st.ID, member, int(st.Status), at)
		if err != nil {
			return err
		}
		if changed {
			if _, err := tx.AppendEvent(store.Event{Kind: store.EventReceipt, GroupID: sg.ID, MessageSeq: seq, Member: member, State: st.Status.String()}); err != nil {
				return err
			}
		}
	}
	return nil
}
