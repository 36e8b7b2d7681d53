package store

import (
	"fmt"
	"time"
)

// DeleteMessagesBefore deletes the messages received before t, with their
// message events, and reports how many messages went. The newest message
// of each group stays, so that its sequence numbers keep counting up (a
// reader's cursor stays valid).
func (tx *Tx) DeleteMessagesBefore(t time.Time) (int, error) {
	res, err := tx.exec(`DELETE FROM messages WHERE received_at < ? AND id NOT IN (SELECT MAX(id) FROM messages GROUP BY group_id)`, unixNano(t))
	if err != nil {
		return 0, fmt.Errorf("store: delete messages: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.exec(`DELETE FROM events WHERE kind = ? AND NOT EXISTS
		(SELECT 1 FROM messages m WHERE m.group_id = events.group_id AND m.seq = events.message_seq)`, string(EventMessage)); err != nil {
		return 0, fmt.Errorf("store: delete message events: %w", err)
	}
	if n > 0 {
		tx.scrub = true
	}
	return int(n), nil
}

// DeleteEventsBefore deletes the events recorded before t and reports how
// many went. Sequence numbers are never reused, so a cursor stays valid.
func (tx *Tx) DeleteEventsBefore(t time.Time) (int, error) {
	res, err := tx.exec(`DELETE FROM events WHERE at < ?`, unixNano(t))
	if err != nil {
		return 0, fmt.Errorf("store: delete events: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
