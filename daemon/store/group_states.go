package store

import (
	"bytes"
	"fmt"
	"sync"
)

// A group's whole MLS state lives in a table of its own, group_states,
// apart from its row in groups: the row, which every message reads and
// writes (ratchets, group_ratchets.go), stays a few hundred bytes, and
// the state, which grows with the group, is read and written only when it
// changes. The store also keeps the last states it read or wrote in
// memory, by group and state_tag: a tag names one write of a state, so
// what is kept for a tag is what the table holds for it, and a message's
// transaction reads no state at all.

const migrationGroupStates = `
CREATE TABLE IF NOT EXISTS group_states (
	group_id BLOB PRIMARY KEY,
	state    BLOB NOT NULL
);
INSERT INTO group_states (group_id, state) SELECT group_id, state FROM groups WHERE length(state) > 0
	ON CONFLICT (group_id) DO UPDATE SET state = excluded.state;
UPDATE groups SET state = x'';
`

// Bounds of the states kept in memory.
const (
	stateCacheEntries = 64
	stateCacheBytes   = 64 << 20
)

// stateCache is the states kept in memory, by group id.
type stateCache struct {
	mu sync.Mutex
	m  bounded[cachedState] // sized by the state's bytes
}

type cachedState struct {
	tag, state []byte
}

// get returns the state written with tag for group id, if kept.
func (c *stateCache) get(id, tag []byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m.get(string(id))
	if !ok || len(tag) == 0 || !bytes.Equal(e.tag, tag) {
		return nil, false
	}
	return e.state, true
}

// put keeps state as written with tag for group id. A tag of a write that
// rolls back is never read, so a state may be kept before its commit.
func (c *stateCache) put(id, tag, state []byte) {
	if len(tag) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.put(string(id), cachedState{tag: bytes.Clone(tag), state: state}, len(state), stateCacheEntries, stateCacheBytes)
}

// forget wipes and drops every state (they hold the groups' secrets);
// only Close calls it, when no transaction holds one.
func (c *stateCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m.m {
		clear(e.v.state)
	}
	c.m.clear()
}

// fillState sets g.State: the one kept for g's tag, or the table's. The
// bytes are shared with the store's memory: nobody writes into a
// Group.State.
func (tx *Tx) fillState(g *Group) error {
	if st, ok := tx.states.get(g.ID, g.StateTag); ok {
		g.State = st
		return nil
	}
	var st []byte
	if err := tx.queryRow(`SELECT state FROM group_states WHERE group_id = ?`, g.ID).Scan(&st); err != nil {
		return fmt.Errorf("store: read state of group %x: %w", g.ID, err)
	}
	g.State = st
	tx.states.put(g.ID, g.StateTag, st)
	return nil
}

// putState writes g's state into the table and keeps a copy of it (the
// caller's bytes stay the caller's).
func (tx *Tx) putState(g Group) error {
	if _, err := tx.exec(`INSERT INTO group_states (group_id, state) VALUES (?, ?)
		ON CONFLICT (group_id) DO UPDATE SET state = excluded.state`, g.ID, g.State); err != nil {
		return fmt.Errorf("store: put state of group %x: %w", g.ID, err)
	}
	tx.states.put(g.ID, g.StateTag, bytes.Clone(g.State))
	return nil
}
