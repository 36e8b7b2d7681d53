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
	// State is the serialized MLS group state.
	State     []byte
	Epoch     uint64
	CreatedAt time.Time
	UpdatedAt time.Time
	// LeftAt is zero while the user is a member.
	LeftAt time.Time
}

// PutGroup inserts the group or replaces its name, state and epoch.
func (tx *Tx) PutGroup(g Group) error {
	if len(g.ID) == 0 {
		return fmt.Errorf("store: put group: %w: empty group id", ErrInvalid)
	}
	if g.State == nil {
		g.State = []byte{}
	}
	created := g.CreatedAt
	if created.IsZero() {
		created = tx.now
	}
	_, err := tx.exec(`INSERT INTO groups (group_id, name, state, epoch, created_at, updated_at, left_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_id) DO UPDATE SET name = excluded.name, state = excluded.state, epoch = excluded.epoch,
			updated_at = excluded.updated_at, left_at = excluded.left_at`,
		g.ID, g.Name, g.State, int64(g.Epoch), unixNano(created), unixNano(tx.now), unixNano(g.LeftAt))
	if err != nil {
		return fmt.Errorf("store: put group %x: %w", g.ID, err)
	}
	return nil
}

const groupColumns = `group_id, name, state, epoch, created_at, updated_at, left_at`

func scanGroup(scan func(...any) error) (Group, error) {
	var g Group
	var epoch, created, updated, left int64
	if err := scan(&g.ID, &g.Name, &g.State, &epoch, &created, &updated, &left); err != nil {
		return Group{}, err
	}
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
	return out, nil
}
