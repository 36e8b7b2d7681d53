package store

import (
	"fmt"
)

// Attachments: each message that carries files keeps their references
// (internal/content attachment parts: where the ciphertext is, its size
// and hash, and the key) next to it, so that the user can save them
// later. A reference is a secret like the message text: it leaves with
// its message (ON DELETE CASCADE) and from the file with secure_delete.
const migrationAttachments = `
CREATE TABLE attachments (
	group_id    BLOB    NOT NULL,
	message_seq INTEGER NOT NULL,
	idx         INTEGER NOT NULL CHECK (idx >= 0),
	ref         BLOB    NOT NULL,
	PRIMARY KEY (group_id, message_seq, idx),
	FOREIGN KEY (group_id, message_seq) REFERENCES messages (group_id, seq) ON DELETE CASCADE
);
`

// AddAttachments stores the encoded references of message seq of group,
// in order.
func (tx *Tx) AddAttachments(groupID []byte, seq uint64, refs [][]byte) error {
	for i, r := range refs {
		if _, err := tx.exec(`INSERT INTO attachments (group_id, message_seq, idx, ref) VALUES (?, ?, ?, ?)`,
			groupID, int64(seq), i, r); err != nil {
			return fmt.Errorf("store: add attachment: %w", err)
		}
	}
	return nil
}

// Attachments returns the encoded references of message seq of group, in
// order (none for a message without attachments).
func (tx *Tx) Attachments(groupID []byte, seq uint64) ([][]byte, error) {
	rows, err := tx.query(`SELECT ref FROM attachments WHERE group_id = ? AND message_seq = ? ORDER BY idx`, groupID, int64(seq))
	if err != nil {
		return nil, fmt.Errorf("store: attachments: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var r []byte
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("store: attachments: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
