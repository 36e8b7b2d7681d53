package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Message is one entry of a group's history.
type Message struct {
	// ID is the global history position (for paging across groups).
	ID      int64
	GroupID []byte
	// Seq is the local per-group sequence number, from 1, assigned on
	// append: the order of this user's history (paging, cursors).
	Seq uint64
	// GroupSeq is the node's per-group sequence number, the group's order
	// and the same for every member; 0 while not known (an outgoing
	// message the node has not accepted yet, a group of one, history
	// from before it was kept, history moved to a successor group).
	GroupSeq   uint64
	MessageID  []byte
	Sender     []byte
	Text       string
	SentAt     time.Time
	ReceivedAt time.Time
	Read       bool
	Outgoing   bool
	// Kind is what the message is (content.go); empty for a text.
	Kind MessageKind
	// Ref is the message a reply or reaction refers to.
	Ref []byte
	// EditedAt is set when the author edited the text.
	EditedAt time.Time
	// Deleted is set when the author deleted it (its text is gone).
	Deleted bool
	// ExpiresAt, when set, is when it disappears (content.go).
	ExpiresAt time.Time
	// SenderDevice is the key of the device that sent it (the sender
	// leaf's signature key; the user key itself for a single-device
	// person); empty for a message stored before devices were recorded.
	SenderDevice []byte
	// SenderDeviceName is that device's label from its certificate, as
	// the person chose it (hostile text: escape it to show it); empty
	// when it has none.
	SenderDeviceName string
	// Receipts are the members' states of it; not read with the message
	// (Tx.Receipts reads them).
	Receipts []Receipt
}

// MaxMessageQuery is the largest page Messages returns.
const MaxMessageQuery = 1000

// MessageQuery selects history.
type MessageQuery struct {
	// GroupID limits the query to one group; nil means all groups.
	GroupID []byte
	// After: with GroupID, only messages with Seq > After; without, only
	// messages with ID > After.
	After uint64
	// Limit caps the page (0 means 100; at most MaxMessageQuery).
	Limit      int
	UnreadOnly bool
	// Search keeps the messages whose text contains it (case-insensitive
	// for ASCII letters).
	Search string
	// Since keeps the messages sent at or after it.
	Since time.Time
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// AppendMessage adds a message to its group's history, assigning the next
// per-group Seq (and ID). A message id already in the group returns
// ErrExists: a message is never stored twice.
func (tx *Tx) AppendMessage(m Message) (Message, error) {
	if len(m.GroupID) == 0 || len(m.MessageID) == 0 {
		return Message{}, fmt.Errorf("store: append message: %w: empty group or message id", ErrInvalid)
	}
	if m.Sender == nil {
		m.Sender = []byte{}
	}
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = tx.now
	}
	var next int64
	if err := tx.queryRow(`SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE group_id = ?`, m.GroupID).Scan(&next); err != nil {
		return Message{}, fmt.Errorf("store: append message: %w", err)
	}
	if m.Ref == nil {
		m.Ref = []byte{}
	}
	if m.SenderDevice == nil {
		m.SenderDevice = []byte{}
	}
	res, err := tx.exec(`INSERT INTO messages (group_id, seq, message_id, sender, text, sent_at, received_at, read, outgoing, group_seq, kind, ref, expires_at, sender_device, sender_device_name)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.GroupID, next, m.MessageID, m.Sender, m.Text, unixNano(m.SentAt), unixNano(m.ReceivedAt), boolInt(m.Read), boolInt(m.Outgoing),
		clampInt64(m.GroupSeq), string(m.Kind), m.Ref, unixNano(m.ExpiresAt), m.SenderDevice, m.SenderDeviceName)
	if isUniqueViolation(err) {
		return Message{}, fmt.Errorf("store: append message %x: %w", m.MessageID, ErrExists)
	}
	if err != nil {
		return Message{}, fmt.Errorf("store: append message: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Message{}, fmt.Errorf("store: append message: %w", err)
	}
	m.ID, m.Seq = id, uint64(next)
	return m, nil
}

// SetGroupSeq records the node's per-group sequence number of the message
// seq of groupID (an outgoing message, once the node accepted it).
func (tx *Tx) SetGroupSeq(groupID []byte, seq, groupSeq uint64) error {
	res, err := tx.exec(`UPDATE messages SET group_seq = ? WHERE group_id = ? AND seq = ?`, clampInt64(groupSeq), groupID, int64(seq))
	if err != nil {
		return fmt.Errorf("store: set group seq: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("store: set group seq of message %x/%d: %w", groupID, seq, errors.Join(ErrNotFound, err))
	}
	return nil
}

// clampInt64 maps a uint64 from the node onto SQLite's integer range.
func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// migrationMessageDevices: the device that sent a message and its label
// (empty for the messages stored before).
const migrationMessageDevices = `
ALTER TABLE messages ADD COLUMN sender_device BLOB NOT NULL DEFAULT x'';
ALTER TABLE messages ADD COLUMN sender_device_name TEXT NOT NULL DEFAULT '';
`

const messageColumns = `id, group_id, seq, message_id, sender, text, sent_at, received_at, read, outgoing, group_seq, kind, ref, edited_at, deleted, expires_at, sender_device, sender_device_name`

func scanMessage(scan func(...any) error) (Message, error) {
	var m Message
	var seq, sent, recv, gseq, edited, expires int64
	var read, out, deleted int
	var kind string
	if err := scan(&m.ID, &m.GroupID, &seq, &m.MessageID, &m.Sender, &m.Text, &sent, &recv, &read, &out, &gseq, &kind, &m.Ref, &edited, &deleted, &expires, &m.SenderDevice, &m.SenderDeviceName); err != nil {
		return Message{}, err
	}
	m.Seq, m.GroupSeq = uint64(seq), uint64(gseq)
	m.SentAt, m.ReceivedAt = fromUnixNano(sent), fromUnixNano(recv)
	m.Read, m.Outgoing = read != 0, out != 0
	m.Kind, m.EditedAt, m.Deleted, m.ExpiresAt = MessageKind(kind), fromUnixNano(edited), deleted != 0, fromUnixNano(expires)
	if len(m.Ref) == 0 {
		m.Ref = nil
	}
	if len(m.SenderDevice) == 0 {
		m.SenderDevice = nil
	}
	return m, nil
}

// Messages returns one page of history in order, and whether more rows
// match after it.
func (tx *Tx) Messages(q MessageQuery) (msgs []Message, more bool, err error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > MaxMessageQuery {
		limit = MaxMessageQuery
	}
	var where []string
	var args []any
	if q.GroupID != nil {
		where = append(where, "group_id = ?", "seq > ?")
		args = append(args, q.GroupID, int64(q.After))
	} else {
		// A merged direct chat's messages are shown in the one it was
		// merged into (direct.go).
		where = append(where, "id > ?", "group_id NOT IN (SELECT group_id FROM direct_chats WHERE merged_into IS NOT NULL)")
		args = append(args, int64(q.After))
	}
	if q.UnreadOnly {
		where = append(where, "read = 0")
	}
	if q.Search != "" {
		where = append(where, `text LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscaper.Replace(q.Search)+"%")
	}
	if !q.Since.IsZero() {
		where = append(where, "sent_at >= ?")
		args = append(args, unixNano(q.Since))
	}
	order := "id"
	if q.GroupID != nil {
		order = "seq"
	}
	rows, err := tx.query(`SELECT `+messageColumns+` FROM messages WHERE `+strings.Join(where, " AND ")+
		` ORDER BY `+order+` LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("store: messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMessage(rows.Scan)
		if err != nil {
			return nil, false, fmt.Errorf("store: messages: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: messages: %w", err)
	}
	if len(msgs) > limit {
		return msgs[:limit], true, nil
	}
	return msgs, false, nil
}

// Message returns one message by group and seq.
func (tx *Tx) Message(groupID []byte, seq uint64) (Message, error) {
	m, err := scanMessage(tx.queryRow(`SELECT `+messageColumns+` FROM messages WHERE group_id = ? AND seq = ?`, groupID, int64(seq)).Scan)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Message{}, fmt.Errorf("store: message %x/%d: %w", groupID, seq, ErrNotFound)
		}
		return Message{}, fmt.Errorf("store: read message: %w", err)
	}
	return m, nil
}

// MessageByGroupSeq returns the message of groupID whose number in the
// group's order (GroupSeq, as the node gave it) is groupSeq.
func (tx *Tx) MessageByGroupSeq(groupID []byte, groupSeq uint64) (Message, error) {
	if groupSeq == 0 {
		return Message{}, fmt.Errorf("store: message %x/#0: %w", groupID, ErrNotFound)
	}
	m, err := scanMessage(tx.queryRow(`SELECT `+messageColumns+` FROM messages WHERE group_id = ? AND group_seq = ? ORDER BY seq LIMIT 1`, groupID, clampInt64(groupSeq)).Scan)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Message{}, fmt.Errorf("store: message %x/#%d: %w", groupID, groupSeq, ErrNotFound)
		}
		return Message{}, fmt.Errorf("store: read message: %w", err)
	}
	return m, nil
}

// MarkRead marks the messages with the given IDs read.
func (tx *Tx) MarkRead(ids []int64) error {
	for _, id := range ids {
		if _, err := tx.exec(`UPDATE messages SET read = 1 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: mark read: %w", err)
		}
	}
	return nil
}

// CountUnread counts unread messages, in one group or (groupID nil) all.
func (tx *Tx) CountUnread(groupID []byte) (uint64, error) {
	var n int64
	var err error
	if groupID == nil {
		err = tx.queryRow(`SELECT COUNT(*) FROM messages WHERE read = 0`).Scan(&n)
	} else {
		err = tx.queryRow(`SELECT COUNT(*) FROM messages WHERE read = 0 AND group_id = ?`, groupID).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("store: count unread: %w", err)
	}
	return uint64(n), nil
}

// LastSeq is the newest message seq of a group (0 when it has none).
func (tx *Tx) LastSeq(groupID []byte) (uint64, error) {
	var n int64
	if err := tx.queryRow(`SELECT COALESCE(MAX(seq), 0) FROM messages WHERE group_id = ?`, groupID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: last seq: %w", err)
	}
	return uint64(n), nil
}
