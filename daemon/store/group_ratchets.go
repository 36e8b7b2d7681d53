package store

import (
	"crypto/rand"
	"fmt"
)

// A group's row holds its whole MLS state (state, rewritten when the
// state changes beyond its secret trees: proposals, commits) and, after
// application messages, the secret trees alone (ratchets: what
// mls.Group.AppendRatchets wrote, NULL when state is the newer). A message
// then writes a few hundred bytes, not a state that grows with the group.
// state_tag is new with every write of state: ratchets are written only
// onto the state they were moved from (PutGroupRatchets), and decoded
// groups are remembered by tag and ratchets (memo.go) rather than by the
// whole state's bytes.

const migrationGroupRatchets = `
ALTER TABLE groups ADD COLUMN ratchets BLOB;
ALTER TABLE groups ADD COLUMN state_tag BLOB NOT NULL DEFAULT x'';
UPDATE groups SET state_tag = randomblob(16);
`

// migrationOutboxFanOut marks group messages the node fans out without a
// list of recipients (OutboxItem.FanOut).
const migrationOutboxFanOut = `
ALTER TABLE outbox ADD COLUMN fan_out INTEGER NOT NULL DEFAULT 0;
`

// stateTagSize is the size of a state tag.
const stateTagSize = 16

// NewStateTag returns a tag for a new write of a group's state.
func NewStateTag() []byte {
	t := make([]byte, stateTagSize)
	rand.Read(t)
	return t
}

// PutGroupRatchets writes g's ratchets and its other columns but the state,
// onto the state g.StateTag names at g.Epoch under g.Name. It reports false
// and writes nothing when the row holds another state (or none): the caller
// then writes the whole state with PutGroup.
func (tx *Tx) PutGroupRatchets(g Group) (bool, error) {
	if len(g.Ratchets) == 0 || len(g.StateTag) == 0 {
		return false, nil
	}
	res, err := tx.exec(`UPDATE groups SET ratchets = ?, updated_at = ?, left_at = ?, join_reported = ?, disappear_after = ?
		WHERE group_id = ? AND epoch = ? AND name = ? AND state_tag = ?`,
		g.Ratchets, unixNano(tx.now), unixNano(g.LeftAt), boolInt(g.JoinReported), int64(g.DisappearAfter), g.ID, int64(g.Epoch), g.Name, g.StateTag)
	if err != nil {
		return false, fmt.Errorf("store: put ratchets of group %x: %w", g.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: put ratchets of group %x: %w", g.ID, err)
	}
	return n == 1, nil
}

// AfterCommit runs fn once tx has committed (not when it, or the savepoint
// fn was registered in, rolls back).
func (tx *Tx) AfterCommit(fn func()) {
	if !tx.readOnly {
		tx.after = append(tx.after, fn)
	}
}
