package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OutboxKind is what an outbox item carries.
type OutboxKind string

// Outbox kinds.
const (
	OutboxApplication OutboxKind = "application" // an encrypted application message
	OutboxCommit      OutboxKind = "commit"      // a pending commit (and its Welcome)
)

// OutboxState is where an outbox item is in its delivery.
type OutboxState string

// Outbox states.
const (
	OutboxPending OutboxState = "pending" // waiting for the node
	OutboxSent    OutboxState = "sent"    // the node accepted it
	OutboxDropped OutboxState = "dropped" // abandoned (e.g. a commit that lost its epoch)
	// OutboxRerun: a commit that lost its epoch and was discarded, whose
	// Intent waits to be run again on the new epoch.
	OutboxRerun OutboxState = "rerun"
)

func (s OutboxState) valid() bool {
	return s == OutboxPending || s == OutboxSent || s == OutboxDropped || s == OutboxRerun
}

// OutboxItem is one message waiting for (or handed to) the node.
type OutboxItem struct {
	ID      int64
	Kind    OutboxKind
	GroupID []byte
	// ClientMsgID makes the node's enqueue idempotent; unique when set.
	ClientMsgID []byte
	Payload     []byte
	// Recipients are identity keys.
	Recipients [][]byte
	// FanOut marks a group message the node gives every other member of
	// the group (it knows them from the group's tree): it needs no
	// Recipients, whose list would grow with the group.
	FanOut bool
	Epoch  uint64
	// MessageSeq links an application message to its history entry.
	MessageSeq uint64
	// Welcome is a commit's Welcome (empty when it adds nobody), for
	// WelcomeRecipients.
	Welcome           []byte
	WelcomeRecipients [][]byte
	// Intent is what a commit was built for, in the backend's encoding
	// (empty when it cannot be built again); the store keeps it opaque.
	Intent    []byte
	State     OutboxState
	Attempts  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// recipientsSize is the size of each recipient key in the stored blob.
const recipientsSize = 32

func packRecipients(rs [][]byte) ([]byte, error) {
	out := make([]byte, 0, len(rs)*recipientsSize)
	for _, r := range rs {
		if len(r) != recipientsSize {
			return nil, fmt.Errorf("%w: recipient key has %d bytes, want %d", ErrInvalid, len(r), recipientsSize)
		}
		out = append(out, r...)
	}
	return out, nil
}

func unpackRecipients(b []byte) ([][]byte, error) {
	if len(b)%recipientsSize != 0 {
		return nil, fmt.Errorf("%w: recipients blob of %d bytes", ErrInvalid, len(b))
	}
	out := make([][]byte, 0, len(b)/recipientsSize)
	for i := 0; i < len(b); i += recipientsSize {
		out = append(out, b[i:i+recipientsSize:i+recipientsSize])
	}
	return out, nil
}

// AddOutbox queues an item in state pending and returns it with ID set. A
// ClientMsgID already queued returns ErrExists.
func (tx *Tx) AddOutbox(it OutboxItem) (OutboxItem, error) {
	if it.Kind != OutboxApplication && it.Kind != OutboxCommit {
		return OutboxItem{}, fmt.Errorf("store: add outbox: %w: kind %q", ErrInvalid, it.Kind)
	}
	if len(it.Payload) == 0 {
		return OutboxItem{}, fmt.Errorf("store: add outbox: %w: empty payload", ErrInvalid)
	}
	rcpt, err := packRecipients(it.Recipients)
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: add outbox: %w", err)
	}
	wrcpt, err := packRecipients(it.WelcomeRecipients)
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: add outbox: welcome %w", err)
	}
	if it.Welcome == nil {
		it.Welcome = []byte{}
	}
	if it.Intent == nil {
		it.Intent = []byte{}
	}
	it.State, it.CreatedAt, it.UpdatedAt = OutboxPending, tx.now, tx.now
	var cid any
	if len(it.ClientMsgID) > 0 {
		cid = it.ClientMsgID
	}
	res, err := tx.exec(`INSERT INTO outbox (kind, group_id, client_msg_id, payload, recipients, fan_out, epoch, message_seq, state, created_at, updated_at, welcome, welcome_recipients, intent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(it.Kind), it.GroupID, cid, it.Payload, rcpt, boolInt(it.FanOut), int64(it.Epoch), int64(it.MessageSeq), string(it.State), unixNano(tx.now), unixNano(tx.now), it.Welcome, wrcpt, it.Intent)
	if isUniqueViolation(err) {
		return OutboxItem{}, fmt.Errorf("store: add outbox: client message id %x: %w", it.ClientMsgID, ErrExists)
	}
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: add outbox: %w", err)
	}
	if it.ID, err = res.LastInsertId(); err != nil {
		return OutboxItem{}, fmt.Errorf("store: add outbox: %w", err)
	}
	if it.Kind == OutboxApplication {
		tx.outboxAdded(cloneOutboxItem(it))
	} else {
		tx.outboxChanged()
	}
	return it, nil
}

// cloneOutboxItem copies it's slices, as a read of its row would return
// them: the fresh list's items do not share the caller's memory.
func cloneOutboxItem(it OutboxItem) OutboxItem {
	it.GroupID = bytes.Clone(it.GroupID)
	it.ClientMsgID = bytes.Clone(it.ClientMsgID)
	it.Payload = bytes.Clone(it.Payload)
	it.Welcome = bytes.Clone(it.Welcome)
	it.Intent = bytes.Clone(it.Intent)
	rs := make([][]byte, len(it.Recipients))
	for i, r := range it.Recipients {
		rs[i] = bytes.Clone(r)
	}
	it.Recipients = rs
	ws := make([][]byte, len(it.WelcomeRecipients))
	for i, r := range it.WelcomeRecipients {
		ws[i] = bytes.Clone(r)
	}
	it.WelcomeRecipients = ws
	return it
}

const outboxColumns = `id, kind, group_id, client_msg_id, payload, recipients, fan_out, epoch, message_seq, state, attempts, last_error, created_at, updated_at, welcome, welcome_recipients, intent`

func scanOutbox(scan func(...any) error) (OutboxItem, error) {
	var it OutboxItem
	var kind, state string
	var rcpt, wrcpt []byte
	var epoch, mseq, created, updated, fan int64
	if err := scan(&it.ID, &kind, &it.GroupID, &it.ClientMsgID, &it.Payload, &rcpt, &fan, &epoch, &mseq, &state, &it.Attempts, &it.LastError, &created, &updated, &it.Welcome, &wrcpt, &it.Intent); err != nil {
		return OutboxItem{}, err
	}
	var err error
	if it.Recipients, err = unpackRecipients(rcpt); err != nil {
		return OutboxItem{}, err
	}
	if it.WelcomeRecipients, err = unpackRecipients(wrcpt); err != nil {
		return OutboxItem{}, err
	}
	it.Kind, it.State, it.FanOut = OutboxKind(kind), OutboxState(state), fan != 0
	it.Epoch, it.MessageSeq = uint64(epoch), uint64(mseq)
	it.CreatedAt, it.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return it, nil
}

// Outbox returns one item.
func (tx *Tx) Outbox(id int64) (OutboxItem, error) {
	it, err := scanOutbox(tx.queryRow(`SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return OutboxItem{}, fmt.Errorf("store: outbox item %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: read outbox item: %w", err)
	}
	return it, nil
}

// OutboxByClientMsgID returns the item queued with that client message id.
func (tx *Tx) OutboxByClientMsgID(cid []byte) (OutboxItem, error) {
	it, err := scanOutbox(tx.queryRow(`SELECT `+outboxColumns+` FROM outbox WHERE client_msg_id = ?`, cid).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return OutboxItem{}, fmt.Errorf("store: outbox client message id %x: %w", cid, ErrNotFound)
	}
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: read outbox item: %w", err)
	}
	return it, nil
}

// PendingOutbox returns up to limit pending items in queue order.
func (tx *Tx) PendingOutbox(limit int) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := tx.query(`SELECT `+outboxColumns+` FROM outbox WHERE state = ? ORDER BY id LIMIT ?`, string(OutboxPending), limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: pending outbox: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending outbox: %w", err)
	}
	return out, nil
}

// PendingSends returns up to limit pending application items in queue
// order, leaving out those of the groups in skip (and, with skipDirect,
// those of no group), so that one group that waits does not hide the
// items of others behind it.
func (tx *Tx) PendingSends(limit int, skip [][]byte, skipDirect bool) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = 100
	}
	// A group being recovered (recovery.go) sends nothing: its messages
	// go out in the successor.
	q := `SELECT ` + outboxColumns + ` FROM outbox WHERE state = ? AND kind = ?
		AND coalesce(group_id, x'') NOT IN (SELECT group_id FROM recoveries WHERE done = 0)`
	args := []any{string(OutboxPending), string(OutboxApplication)}
	if skipDirect {
		q += ` AND coalesce(length(group_id), 0) > 0`
	}
	if len(skip) > 0 {
		q += ` AND (coalesce(length(group_id), 0) = 0 OR group_id NOT IN (?` + strings.Repeat(`, ?`, len(skip)-1) + `))`
		for _, g := range skip {
			args = append(args, g)
		}
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: pending sends: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: pending sends: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending sends: %w", err)
	}
	return out, nil
}

// CountPendingOutbox counts pending items.
func (tx *Tx) CountPendingOutbox() (uint64, error) {
	var n int64
	if err := tx.queryRow(`SELECT COUNT(*) FROM outbox WHERE state = ?`, string(OutboxPending)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count outbox: %w", err)
	}
	return uint64(n), nil
}

// SetOutboxState moves an item to state, recording lastErr. A pending
// item's attempt counter grows when lastErr is not empty.
func (tx *Tx) SetOutboxState(id int64, state OutboxState, lastErr string) error {
	if !state.valid() {
		return fmt.Errorf("store: set outbox state: %w: %q", ErrInvalid, state)
	}
	inc := 0
	if lastErr != "" {
		inc = 1
	}
	if state != OutboxSent {
		tx.outboxChanged()
	}
	res, err := tx.exec(`UPDATE outbox SET state = ?, last_error = ?, attempts = attempts + ?, updated_at = ? WHERE id = ?`,
		string(state), lastErr, inc, unixNano(tx.now), id)
	if err != nil {
		return fmt.Errorf("store: set outbox state: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: set outbox state of %d: %w", id, ErrNotFound)
	}
	return nil
}

// PendingCommits returns the pending commit items, oldest first.
func (tx *Tx) PendingCommits() ([]OutboxItem, error) {
	out, err := tx.commitsIn(OutboxPending)
	if err != nil {
		return nil, fmt.Errorf("store: pending commits: %w", err)
	}
	return out, nil
}

// RerunCommits returns the commit items in state OutboxRerun (their intent
// waits to be run again), oldest first.
func (tx *Tx) RerunCommits() ([]OutboxItem, error) {
	out, err := tx.commitsIn(OutboxRerun)
	if err != nil {
		return nil, fmt.Errorf("store: commits to run again: %w", err)
	}
	return out, nil
}

func (tx *Tx) commitsIn(state OutboxState) ([]OutboxItem, error) {
	rows, err := tx.query(`SELECT `+outboxColumns+` FROM outbox WHERE state = ? AND kind = ? ORDER BY id`, string(state), string(OutboxCommit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
