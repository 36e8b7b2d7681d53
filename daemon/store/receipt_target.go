package store

import (
	"database/sql"
	"errors"
	"fmt"
)

// ReceiptTarget returns the history number of message messageID of a
// group, the message a receipt names: only that column, where
// MessageByID reads and decodes the whole row. ErrNotFound when the
// group has no such message.
func (tx *Tx) ReceiptTarget(groupID, messageID []byte) (uint64, error) {
	var seq int64
	err := tx.queryRow(`SELECT seq FROM messages WHERE group_id = ? AND message_id = ?`, groupID, messageID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: message %x/%x: %w", groupID, messageID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: receipt target: %w", err)
	}
	return uint64(seq), nil
}
