package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// GroupIDSize is the size of the MLS group ids qpd creates.
const GroupIDSize = 16

// Group is a group's stored state.
type Group struct {
	ID   []byte
	Name string
	// State is the serialized MLS group state; Ratchets, when not nil,
	// its secret trees as moved since (group_ratchets.go). StateTag names
	// the write of State (empty: PutGroup makes a new one). The bytes a
	// read returns are shared with the store's memory and must not be
	// written into.
	State     []byte
	Ratchets  []byte
	StateTag  []byte
	Epoch     uint64
	CreatedAt time.Time
	UpdatedAt time.Time
	// LeftAt is zero while the user is a member.
	LeftAt time.Time
	// JoinReported is false for a group joined by a Welcome until a Join
	// call has reported it.
	JoinReported bool
	// DisappearAfter is the group's disappearing-messages timer (0: off),
	// set by a member's timer message; it lives only here, never in the
	// MLS group context the node reads.
	DisappearAfter time.Duration
}

// PutGroup inserts the group or replaces its name, state (ratchets and
// tag included, as g holds them) and epoch.
func (tx *Tx) PutGroup(g Group) error {
	if len(g.ID) == 0 {
		return fmt.Errorf("store: put group: %w: empty group id", ErrInvalid)
	}
	if g.State == nil {
		g.State = []byte{}
	}
	if len(g.StateTag) == 0 {
		g.StateTag = NewStateTag()
	}
	created := g.CreatedAt
	if created.IsZero() {
		created = tx.now
	}
	// The state goes to group_states. The common case then, a group
	// changed within its epoch (a proposal; a message only moves the
	// ratchets, PutGroupRatchets): the row is there with the same epoch
	// and name, one statement, which leaves the name's index alone; a new
	// epoch's keys are not among what it replaces, so there is nothing to
	// scrub.
	if err := tx.putState(g); err != nil {
		return err
	}
	res, err := tx.exec(`UPDATE groups SET ratchets = ?, state_tag = ?, updated_at = ?, left_at = ?, join_reported = ?, disappear_after = ?
		WHERE group_id = ? AND epoch = ? AND name = ?`,
		g.Ratchets, g.StateTag, unixNano(tx.now), unixNano(g.LeftAt), boolInt(g.JoinReported), int64(g.DisappearAfter), g.ID, int64(g.Epoch), g.Name)
	if err != nil {
		return fmt.Errorf("store: put group %x: %w", g.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: put group %x: %w", g.ID, err)
	} else if n == 1 {
		return nil
	}
	var old int64
	switch err := tx.queryRow(`SELECT epoch FROM groups WHERE group_id = ?`, g.ID).Scan(&old); {
	case err == nil && uint64(old) != g.Epoch:
		tx.scrub = true // the old epoch's keys are replaced
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: put group %x: %w", g.ID, err)
	}
	_, err = tx.exec(`INSERT INTO groups (group_id, name, state, ratchets, state_tag, epoch, created_at, updated_at, left_at, join_reported, disappear_after) VALUES (?, ?, x'', ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_id) DO UPDATE SET name = excluded.name, ratchets = excluded.ratchets,
			state_tag = excluded.state_tag, epoch = excluded.epoch,
			updated_at = excluded.updated_at, left_at = excluded.left_at, join_reported = excluded.join_reported,
			disappear_after = excluded.disappear_after`,
		g.ID, g.Name, g.Ratchets, g.StateTag, int64(g.Epoch), unixNano(created), unixNano(tx.now), unixNano(g.LeftAt), boolInt(g.JoinReported), int64(g.DisappearAfter))
	if err != nil {
		return fmt.Errorf("store: put group %x: %w", g.ID, err)
	}
	return nil
}

// groupColumns are a group's row; its state is in group_states
// (group_states.go).
const groupColumns = `group_id, name, ratchets, state_tag, epoch, created_at, updated_at, left_at, join_reported, disappear_after`

func scanGroup(scan func(...any) error) (Group, error) {
	var g Group
	var epoch, created, updated, left, reported, disappear int64
	if err := scan(&g.ID, &g.Name, &g.Ratchets, &g.StateTag, &epoch, &created, &updated, &left, &reported, &disappear); err != nil {
		return Group{}, err
	}
	g.DisappearAfter = time.Duration(disappear)
	g.JoinReported = reported != 0
	g.Epoch = uint64(epoch)
	g.CreatedAt, g.UpdatedAt, g.LeftAt = fromUnixNano(created), fromUnixNano(updated), fromUnixNano(left)
	return g, nil
}

// Group returns the group with the given id.
func (tx *Tx) Group(id []byte) (Group, error) {
	g, err := scanGroup(tx.queryRow(`SELECT `+groupColumns+` FROM groups WHERE group_id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, fmt.Errorf("store: group %x: %w", id, ErrNotFound)
	}
	if err != nil {
		return Group{}, fmt.Errorf("store: read group: %w", err)
	}
	if err := tx.fillState(&g); err != nil {
		return Group{}, err
	}
	return g, nil
}

// GroupsByName returns the current groups (not left) with the given name.
func (tx *Tx) GroupsByName(name string) ([]Group, error) {
	return tx.groups(`SELECT `+groupColumns+` FROM groups WHERE name = ? AND left_at = 0 ORDER BY created_at, group_id`, name)
}

// Groups returns every group, oldest first; with includeLeft false, only
// the groups the user is still in.
func (tx *Tx) Groups(includeLeft bool) ([]Group, error) {
	q := `SELECT ` + groupColumns + ` FROM groups`
	if !includeLeft {
		q += ` WHERE left_at = 0`
	}
	return tx.groups(q + ` ORDER BY created_at, group_id`)
}

func (tx *Tx) groups(q string, args ...any) ([]Group, error) {
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	defer rows.Close()
	var out []Group
	for rows.Next() {
		g, err := scanGroup(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: list groups: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	rows.Close()
	for i := range out {
		if err := tx.fillState(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UnreportedJoins returns the groups joined by a Welcome that no Join call
// has reported yet, oldest first.
func (tx *Tx) UnreportedJoins() ([]Group, error) {
	return tx.groups(`SELECT ` + groupColumns + ` FROM groups WHERE join_reported = 0 ORDER BY created_at, group_id`)
}

// MarkJoinReported records that a Join call reported the group.
func (tx *Tx) MarkJoinReported(id []byte) error {
	if _, err := tx.exec(`UPDATE groups SET join_reported = 1 WHERE group_id = ?`, id); err != nil {
		return fmt.Errorf("store: mark join reported: %w", err)
	}
	return nil
}
