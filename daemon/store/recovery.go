package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Recovery is a group that cannot pass an epoch (a member's commit the node
// accepted could not be applied) and is being moved to a successor group
// without that member.
type Recovery struct {
	GroupID []byte
	// Epoch is the last epoch the members share.
	Epoch uint64
	// Offender signed the commit that could not be applied.
	Offender []byte
	// Leader is the member expected to create the successor.
	Leader []byte
	// Roster is every identity the successor must hold: the members of
	// Epoch without the offender.
	Roster [][]byte
	// Successor is the successor group's id, once created or joined.
	Successor []byte
	// Done: the successor holds the roster and the group's history, name
	// and waiting messages moved there.
	Done      bool
	StartedAt time.Time
}

// AddRecovery records a recovery; a group with one already returns
// ErrExists.
func (tx *Tx) AddRecovery(r Recovery) error {
	roster, err := packRecipients(r.Roster)
	if err != nil {
		return fmt.Errorf("store: add recovery: %w", err)
	}
	if len(r.Offender) != recipientsSize || len(r.Leader) != recipientsSize {
		return fmt.Errorf("store: add recovery: %w: offender or leader is not an identity key", ErrInvalid)
	}
	tx.outboxChanged()
	_, err = tx.exec(`INSERT INTO recoveries (group_id, epoch, offender, leader, roster, started_at) VALUES (?, ?, ?, ?, ?, ?)`,
		r.GroupID, int64(r.Epoch), r.Offender, r.Leader, roster, unixNano(tx.now))
	if isUniqueViolation(err) {
		return fmt.Errorf("store: add recovery of group %x: %w", r.GroupID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: add recovery: %w", err)
	}
	return nil
}

const recoveryColumns = `group_id, epoch, offender, leader, roster, successor, done, started_at`

func scanRecovery(scan func(...any) error) (Recovery, error) {
	var r Recovery
	var epoch, done, started int64
	var roster []byte
	if err := scan(&r.GroupID, &epoch, &r.Offender, &r.Leader, &roster, &r.Successor, &done, &started); err != nil {
		return Recovery{}, err
	}
	var err error
	if r.Roster, err = unpackRecipients(roster); err != nil {
		return Recovery{}, err
	}
	if len(r.Successor) == 0 {
		r.Successor = nil
	}
	r.Epoch, r.Done, r.StartedAt = uint64(epoch), done != 0, fromUnixNano(started)
	return r, nil
}

// Recovery returns the recovery of a group (ErrNotFound when there is
// none).
func (tx *Tx) Recovery(groupID []byte) (Recovery, error) {
	r, err := scanRecovery(tx.queryRow(`SELECT `+recoveryColumns+` FROM recoveries WHERE group_id = ?`, groupID).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Recovery{}, fmt.Errorf("store: recovery of group %x: %w", groupID, ErrNotFound)
	}
	if err != nil {
		return Recovery{}, fmt.Errorf("store: read recovery: %w", err)
	}
	return r, nil
}

// OpenRecoveries returns the recoveries not done, oldest first.
func (tx *Tx) OpenRecoveries() ([]Recovery, error) {
	rows, err := tx.query(`SELECT ` + recoveryColumns + ` FROM recoveries WHERE done = 0 ORDER BY started_at, group_id`)
	if err != nil {
		return nil, fmt.Errorf("store: open recoveries: %w", err)
	}
	defer rows.Close()
	var out []Recovery
	for rows.Next() {
		r, err := scanRecovery(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: open recoveries: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: open recoveries: %w", err)
	}
	return out, nil
}

// HasOpenRecovery reports whether any group's recovery is not done.
func (tx *Tx) HasOpenRecovery() (bool, error) {
	var open bool
	if err := tx.queryRow(`SELECT EXISTS (SELECT 1 FROM recoveries WHERE done = 0)`).Scan(&open); err != nil {
		return false, fmt.Errorf("store: open recoveries: %w", err)
	}
	return open, nil
}

// SetRecoveryProgress records a recovery's successor and whether it is
// done.
func (tx *Tx) SetRecoveryProgress(groupID, successor []byte, done bool) error {
	if successor == nil {
		successor = []byte{}
	}
	tx.outboxChanged()
	res, err := tx.exec(`UPDATE recoveries SET successor = ?, done = ? WHERE group_id = ?`, successor, boolInt(done), groupID)
	if err != nil {
		return fmt.Errorf("store: set recovery: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("store: set recovery of group %x: %w", groupID, ErrNotFound)
	}
	return nil
}

// MoveHistory moves a group's messages (with the events naming them and
// their receipts) to another group that has none yet, keeping their
// sequence numbers; their numbers in the old group's order (GroupSeq) are
// dropped, since the new group's order numbers from 1 again.
func (tx *Tx) MoveHistory(from, to []byte) error {
	var n int64
	if err := tx.queryRow(`SELECT COUNT(*) FROM messages WHERE group_id = ?`, to).Scan(&n); err != nil {
		return fmt.Errorf("store: move history: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("store: move history to group %x: %w: it has %d messages", to, ErrInvalid, n)
	}
	if _, err := tx.exec(`UPDATE messages SET group_id = ?, group_seq = 0 WHERE group_id = ?`, to, from); err != nil {
		return fmt.Errorf("store: move history: %w", err)
	}
	if _, err := tx.exec(`UPDATE events SET group_id = ? WHERE group_id = ? AND kind IN (?, ?, ?, ?)`, to, from,
		string(EventMessage), string(EventEdited), string(EventDeleted), string(EventReceipt)); err != nil {
		return fmt.Errorf("store: move history: %w", err)
	}
	// Receipts go with the history (content.go).
	if _, err := tx.exec(`UPDATE receipts SET group_id = ? WHERE group_id = ?`, to, from); err != nil {
		return fmt.Errorf("store: move history: %w", err)
	}
	return nil
}

// GroupOutbox returns a group's pending application items, in queue order.
func (tx *Tx) GroupOutbox(groupID []byte) ([]OutboxItem, error) {
	rows, err := tx.query(`SELECT `+outboxColumns+` FROM outbox WHERE group_id = ? AND state = ? AND kind = ? ORDER BY id`,
		groupID, string(OutboxPending), string(OutboxApplication))
	if err != nil {
		return nil, fmt.Errorf("store: group outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: group outbox: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: group outbox: %w", err)
	}
	return out, nil
}

// RetargetOutbox moves a pending application item to another group with
// a new payload (encrypted there), recipients and epoch, and gives its
// history entry the new message id; the item keeps its id and client
// message id.
func (tx *Tx) RetargetOutbox(it OutboxItem, messageID []byte) error {
	rcpt, err := packRecipients(it.Recipients)
	if err != nil {
		return fmt.Errorf("store: retarget outbox: %w", err)
	}
	if len(it.Payload) == 0 {
		return fmt.Errorf("store: retarget outbox: %w: empty payload", ErrInvalid)
	}
	tx.outboxChanged()
	if _, err := tx.exec(`UPDATE outbox SET group_id = ?, payload = ?, recipients = ?, epoch = ?, updated_at = ? WHERE id = ? AND state = ?`,
		it.GroupID, it.Payload, rcpt, int64(it.Epoch), unixNano(tx.now), it.ID, string(OutboxPending)); err != nil {
		return fmt.Errorf("store: retarget outbox: %w", err)
	}
	if it.MessageSeq != 0 {
		if _, err := tx.exec(`UPDATE messages SET message_id = ? WHERE group_id = ? AND seq = ?`, messageID, it.GroupID, int64(it.MessageSeq)); err != nil {
			return fmt.Errorf("store: retarget outbox: %w", err)
		}
	}
	return nil
}
