package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// What a message does beyond its text (the daemon's content format):
// replies and reactions refer to another message, edits and deletes
// change the author's own message in place, receipts are kept per member,
// and a message with ExpiresAt disappears from the file at that time.
// Deleted and expired text is overwritten in the file (secure_delete) and
// the write-ahead log is truncated after the transaction (scrub.go).

// MessageKind is what a history entry is.
type MessageKind string

// Message kinds; the empty kind is a text (before kinds were stored,
// every message was one).
const (
	KindText     MessageKind = ""
	KindReply    MessageKind = "reply"    // text, Ref the message replied to
	KindReaction MessageKind = "reaction" // Text the reaction, Ref the message
	KindTimer    MessageKind = "timer"    // the group's timer was set (Text: seconds)
	KindUnknown  MessageKind = "unknown"  // content this daemon does not understand; Text describes it
	// KindExpired is the newest message of a group after it expired: kept
	// without its text so that the group's sequence numbers keep counting.
	KindExpired MessageKind = "expired"
)

// likeEscaper escapes the LIKE wildcards of a search text.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// MessageByID returns a group's message by its message id.
func (tx *Tx) MessageByID(groupID, messageID []byte) (Message, error) {
	m, err := scanMessage(tx.queryRow(`SELECT `+messageColumns+` FROM messages WHERE group_id = ? AND message_id = ?`, groupID, messageID).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("store: message %x/%x: %w", groupID, messageID, ErrNotFound)
	}
	if err != nil {
		return Message{}, fmt.Errorf("store: read message: %w", err)
	}
	return m, nil
}

// MessagesByIDPrefix returns a group's messages whose message id starts
// with prefix (at most limit of them).
func (tx *Tx) MessagesByIDPrefix(groupID, prefix []byte, limit int) ([]Message, error) {
	rows, err := tx.query(`SELECT `+messageColumns+` FROM messages WHERE group_id = ? AND substr(message_id, 1, ?) = ? ORDER BY seq LIMIT ?`,
		groupID, len(prefix), prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("store: messages by id: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: messages by id: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// EditMessage replaces a message's text and marks it edited. The old
// text leaves the file.
func (tx *Tx) EditMessage(id int64, text string) error {
	if _, err := tx.exec(`UPDATE messages SET text = ?, edited_at = ? WHERE id = ?`, text, unixNano(tx.now), id); err != nil {
		return fmt.Errorf("store: edit message: %w", err)
	}
	tx.scrub = true
	return nil
}

// DeleteMessageText deletes a message's text and attachment references
// and marks it deleted; the entry stays (its sequence number and id), the
// text and the files' keys leave the file.
func (tx *Tx) DeleteMessageText(id int64) error {
	if _, err := tx.exec(`UPDATE messages SET text = '', deleted = 1 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: delete message: %w", err)
	}
	// Its attachment references hold the files' keys.
	if _, err := tx.exec(`DELETE FROM attachments WHERE EXISTS (SELECT 1 FROM messages m WHERE m.id = ?
		AND m.group_id = attachments.group_id AND m.seq = attachments.message_seq)`, id); err != nil {
		return fmt.Errorf("store: delete message: %w", err)
	}
	tx.scrub = true
	return nil
}

// Receipt is a member's state of a message: 1 delivered, 2 read.
type Receipt struct {
	Member []byte
	Status int
	At     time.Time
}

// PutReceipt records a member's state of a message; a state never goes
// back (read stays read). It reports whether anything changed.
func (tx *Tx) PutReceipt(groupID, messageID, member []byte, status int, at time.Time) (bool, error) {
	res, err := tx.exec(`INSERT INTO receipts (group_id, message_id, member, status, at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (group_id, message_id, member) DO UPDATE SET status = excluded.status, at = excluded.at
		WHERE excluded.status > receipts.status`, groupID, messageID, member, status, unixNano(at))
	if err != nil {
		return false, fmt.Errorf("store: put receipt: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Receipts are the members' states of a message, by member.
func (tx *Tx) Receipts(groupID, messageID []byte) ([]Receipt, error) {
	rows, err := tx.query(`SELECT member, status, at FROM receipts WHERE group_id = ? AND message_id = ? ORDER BY member`, groupID, messageID)
	if err != nil {
		return nil, fmt.Errorf("store: receipts: %w", err)
	}
	defer rows.Close()
	var out []Receipt
	for rows.Next() {
		var r Receipt
		var at int64
		if err := rows.Scan(&r.Member, &r.Status, &at); err != nil {
			return nil, fmt.Errorf("store: receipts: %w", err)
		}
		r.At = fromUnixNano(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// NextExpiry is the earliest ExpiresAt of a message still to expire
// (false when none has one).
func (tx *Tx) NextExpiry() (time.Time, bool, error) {
	var n sql.NullInt64
	if err := tx.queryRow(`SELECT MIN(expires_at) FROM messages WHERE expires_at > 0 AND kind <> ?`, string(KindExpired)).Scan(&n); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next expiry: %w", err)
	}
	if !n.Valid {
		return time.Time{}, false, nil
	}
	return fromUnixNano(n.Int64), true, nil
}

// ExpireMessages deletes the messages whose ExpiresAt is at or before
// now, with their events, receipts and attachment references, and reports how many went. The
// newest message of a group is kept as KindExpired without its text, so
// that the group's sequence numbers keep counting up.
func (tx *Tx) ExpireMessages(now time.Time) (int, error) {
	cut := unixNano(now)
	// Attachment references hold the files' keys: they go with every
	// message due, the blanked newest one included.
	if _, err := tx.exec(`DELETE FROM attachments WHERE EXISTS (SELECT 1 FROM messages m WHERE m.group_id = attachments.group_id
		AND m.seq = attachments.message_seq AND m.expires_at > 0 AND m.expires_at <= ?)`, cut); err != nil {
		return 0, fmt.Errorf("store: expire attachments: %w", err)
	}
	res, err := tx.exec(`UPDATE messages SET text = '', ref = x'', kind = ?, expires_at = 0
		WHERE expires_at > 0 AND expires_at <= ? AND id IN (SELECT MAX(id) FROM messages GROUP BY group_id)`, string(KindExpired), cut)
	if err != nil {
		return 0, fmt.Errorf("store: expire messages: %w", err)
	}
	kept, _ := res.RowsAffected()
	if _, err := tx.exec(`DELETE FROM receipts WHERE EXISTS (SELECT 1 FROM messages m WHERE m.group_id = receipts.group_id
		AND m.message_id = receipts.message_id AND m.expires_at > 0 AND m.expires_at <= ?)`, cut); err != nil {
		return 0, fmt.Errorf("store: expire receipts: %w", err)
	}
	res, err = tx.exec(`DELETE FROM messages WHERE expires_at > 0 AND expires_at <= ?`, cut)
	if err != nil {
		return 0, fmt.Errorf("store: expire messages: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.exec(`DELETE FROM events WHERE kind IN (?, ?, ?, ?) AND NOT EXISTS
		(SELECT 1 FROM messages m WHERE m.group_id = events.group_id AND m.seq = events.message_seq)`,
		string(EventMessage), string(EventEdited), string(EventDeleted), string(EventReceipt)); err != nil {
		return 0, fmt.Errorf("store: expire message events: %w", err)
	}
	if n+kept > 0 {
		tx.scrub = true
	}
	return int(n + kept), nil
}
