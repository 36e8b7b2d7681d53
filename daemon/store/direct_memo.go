package store

import (
	"errors"
	"fmt"
	"sync"
)

// Every received group message asks whether its group is a direct chat
// merged into another (MergedInto). The store keeps the merged entries,
// read from the committed rows by a write transaction, and answers from
// them without a statement. PutDirectChat, the only write of those rows,
// drops them: the transaction that wrote reads the rows (they may yet
// roll back), and the next write transaction, which the single writer
// connection runs only after it ended, reads them afresh. View
// transactions, whose snapshot may be older, always read the rows.

// mergedMemoMax bounds the merged entries kept; past it each question
// reads its row.
const mergedMemoMax = 4096

// mergedMemo is the merged direct chats, by group id.
type mergedMemo struct {
	mu sync.Mutex
	m  map[string][]byte // nil: not read
}

func (m *mergedMemo) lookup(groupID []byte) (into []byte, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		return nil, false
	}
	return m.m[string(groupID)], true
}

func (m *mergedMemo) keep(merged map[string][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m = merged
}

func (m *mergedMemo) drop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m = nil
}

// MergedInto returns the group that the direct chat groupID was merged
// into, or nil when groupID is no direct chat or one not merged.
func (tx *Tx) MergedInto(groupID []byte) ([]byte, error) {
	if tx.readOnly || tx.directPut || tx.merged == nil {
		return tx.mergedRow(groupID)
	}
	if into, known := tx.merged.lookup(groupID); known {
		return append([]byte(nil), into...), nil
	}
	rows, err := tx.query(`SELECT group_id, merged_into FROM direct_chats WHERE merged_into IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("store: merged direct chats: %w", err)
	}
	defer rows.Close()
	merged := map[string][]byte{}
	for rows.Next() {
		var gid, into []byte
		if err := rows.Scan(&gid, &into); err != nil {
			return nil, fmt.Errorf("store: merged direct chats: %w", err)
		}
		merged[string(gid)] = into
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: merged direct chats: %w", err)
	}
	if len(merged) <= mergedMemoMax {
		tx.merged.keep(merged)
	}
	return append([]byte(nil), merged[string(groupID)]...), nil
}

func (tx *Tx) mergedRow(groupID []byte) ([]byte, error) {
	d, err := tx.DirectChat(groupID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return d.MergedInto, nil
}
