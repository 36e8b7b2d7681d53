package store

import (
	"fmt"
)

// Delivery receipts owed: the transaction that stores a message notes
// that its receipt is owed, and a later transaction encrypts one receipt
// per group for every message owed and deletes the notes. So the receipt
// costs the receiving transaction one small row, not an encryption, and a
// crash between the two loses nothing: the notes are sent after restart.
const migrationOwedReceipts = `
CREATE TABLE IF NOT EXISTS owed_receipts (
	id         INTEGER PRIMARY KEY,
	group_id   BLOB NOT NULL,
	message_id BLOB NOT NULL
);
`

// MaxOwedReceipts bounds the notes kept: past it, OweReceipt notes
// nothing (the receipt is not sent; the message is kept all the same).
const MaxOwedReceipts = 4096

// OwedReceipt is a delivery receipt owed for message MessageID of group
// GroupID; ID orders the notes.
type OwedReceipt struct {
	ID        int64
	GroupID   []byte
	MessageID []byte
}

// OweReceipt notes that a delivery receipt of message id in group is
// owed. It reports false when MaxOwedReceipts notes are kept already.
func (tx *Tx) OweReceipt(group, id []byte) (bool, error) {
	res, err := tx.exec(`INSERT INTO owed_receipts (group_id, message_id)
		SELECT ?, ? WHERE (SELECT count(*) FROM owed_receipts) < ?`, group, id, MaxOwedReceipts)
	if err != nil {
		return false, fmt.Errorf("store: owe a receipt: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: owe a receipt: %w", err)
	}
	return n == 1, nil
}

// OwedReceipts returns up to limit notes, oldest first.
func (tx *Tx) OwedReceipts(limit int) ([]OwedReceipt, error) {
	rows, err := tx.query(`SELECT id, group_id, message_id FROM owed_receipts ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: owed receipts: %w", err)
	}
	defer rows.Close()
	var out []OwedReceipt
	for rows.Next() {
		var r OwedReceipt
		if err := rows.Scan(&r.ID, &r.GroupID, &r.MessageID); err != nil {
			return nil, fmt.Errorf("store: owed receipts: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: owed receipts: %w", err)
	}
	return out, nil
}

// DeleteOwedReceipts deletes the notes up to and including id.
func (tx *Tx) DeleteOwedReceipts(upTo int64) error {
	if _, err := tx.exec(`DELETE FROM owed_receipts WHERE id <= ?`, upTo); err != nil {
		return fmt.Errorf("store: delete owed receipts: %w", err)
	}
	return nil
}
