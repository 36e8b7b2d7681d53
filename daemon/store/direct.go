package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DirectChat marks a group as the direct (one-to-one) conversation with
// Peer. Two such groups with the same peer can exist when both people
// started the chat at once; the daemon then merges one into the other
// (MergedInto), and the merged group's messages live on in the other.
type DirectChat struct {
	GroupID []byte
	// Peer is the other member's identity key.
	Peer []byte
	// MergedInto is the group this one was merged into (nil: not merged).
	MergedInto []byte
	CreatedAt  time.Time
}

// PutDirectChat inserts or replaces the direct chat entry of a group.
func (tx *Tx) PutDirectChat(d DirectChat) error {
	if len(d.GroupID) == 0 || len(d.Peer) != 32 {
		return fmt.Errorf("store: put direct chat: %w: group id of %d bytes, peer of %d", ErrInvalid, len(d.GroupID), len(d.Peer))
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = tx.now
	}
	var merged any
	if d.MergedInto != nil {
		merged = d.MergedInto
	}
	tx.directPut = true
	if tx.merged != nil {
		tx.merged.drop() // direct_memo.go
	}
	_, err := tx.exec(`INSERT INTO direct_chats (group_id, peer, merged_into, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (group_id) DO UPDATE SET peer = excluded.peer, merged_into = excluded.merged_into`,
		d.GroupID, d.Peer, merged, unixNano(d.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: put direct chat: %w", err)
	}
	return nil
}

const directColumns = `group_id, peer, merged_into, created_at`

func scanDirect(scan func(...any) error) (DirectChat, error) {
	var d DirectChat
	var created int64
	if err := scan(&d.GroupID, &d.Peer, &d.MergedInto, &created); err != nil {
		return DirectChat{}, err
	}
	d.CreatedAt = fromUnixNano(created)
	return d, nil
}

// DirectChat returns the direct chat entry of a group (ErrNotFound when
// the group is no direct chat).
func (tx *Tx) DirectChat(groupID []byte) (DirectChat, error) {
	d, err := scanDirect(tx.queryRow(`SELECT `+directColumns+` FROM direct_chats WHERE group_id = ?`, groupID).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return DirectChat{}, fmt.Errorf("store: direct chat %x: %w", groupID, ErrNotFound)
	}
	if err != nil {
		return DirectChat{}, fmt.Errorf("store: direct chat: %w", err)
	}
	return d, nil
}

// DirectChats returns the direct chat entries with peer, by group id.
func (tx *Tx) DirectChats(peer []byte) ([]DirectChat, error) {
	rows, err := tx.query(`SELECT `+directColumns+` FROM direct_chats WHERE peer = ? ORDER BY group_id`, peer)
	if err != nil {
		return nil, fmt.Errorf("store: direct chats: %w", err)
	}
	defer rows.Close()
	var out []DirectChat
	for rows.Next() {
		d, err := scanDirect(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: direct chats: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: direct chats: %w", err)
	}
	return out, nil
}

// CopyMessages appends copies of every message of group from to the
// history of group to, in their order, skipping those to has already; it
// returns how many it copied. The copies get new seqs in to and keep their
// read marks; the originals are marked read, so that no unread listing
// shows a message twice.
func (tx *Tx) CopyMessages(from, to []byte) (int, error) {
	res, err := tx.exec(`INSERT INTO messages (group_id, seq, message_id, sender, text, sent_at, received_at, read, outgoing, kind, ref, edited_at, deleted, expires_at, sender_device, sender_device_name)
		SELECT ?, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE group_id = ?) + ROW_NUMBER() OVER (ORDER BY m.seq),
			m.message_id, m.sender, m.text, m.sent_at, m.received_at, m.read, m.outgoing, m.kind, m.ref, m.edited_at, m.deleted, m.expires_at, m.sender_device, m.sender_device_name
		FROM messages m WHERE m.group_id = ?
			AND NOT EXISTS (SELECT 1 FROM messages t WHERE t.group_id = ? AND t.message_id = m.message_id)
		ORDER BY m.seq`, to, to, from, to)
	if err != nil {
		return 0, fmt.Errorf("store: copy messages: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.exec(`UPDATE messages SET read = 1 WHERE group_id = ? AND read = 0`, from); err != nil {
		return 0, fmt.Errorf("store: copy messages: %w", err)
	}
	return int(n), nil
}
