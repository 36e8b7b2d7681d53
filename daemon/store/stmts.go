package store

import (
	"context"
	"database/sql"
	"sync"
)

// Statements are parsed once. SQLite takes longer to parse most of the
// store's statements than to run them, and every transaction runs several,
// so the store keeps each statement it has met prepared on its one
// connection and runs it from that form from then on. A statement met for
// the first time runs as it is and is prepared after its transaction ends,
// when the connection is free again: preparing through the pool while a
// transaction holds the only connection would wait for ever. SQLite
// prepares a statement again by itself when the schema changed under it.
//
// Statements whose text varies with their arguments (an IN list of as many
// markers as values) could fill the cache without bound, so it holds at
// most maxPrepared; what comes after runs as it is.

// maxPrepared bounds the statements kept prepared.
const maxPrepared = 256

// stmtCache holds the prepared statements and those waiting to be.
type stmtCache struct {
	mu       sync.Mutex
	prepared map[string]*sql.Stmt
	wanted   map[string]bool
}

// get returns query's prepared statement, or nil after noting that query
// is wanted.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.prepared[query]; ok {
		return st
	}
	if len(c.prepared)+len(c.wanted) < maxPrepared {
		if c.wanted == nil {
			c.wanted = map[string]bool{}
		}
		c.wanted[query] = true
	}
	return nil
}

// prepareWanted prepares the statements met since the last call. It must
// run while no transaction or connection of the caller is open. A
// statement that fails to prepare is dropped: it keeps running as it is.
func (c *stmtCache) prepareWanted(db *sql.DB) {
	c.mu.Lock()
	if len(c.wanted) == 0 {
		c.mu.Unlock()
		return
	}
	var qs []string
	for q := range c.wanted {
		qs = append(qs, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	for _, q := range qs {
		st, err := db.PrepareContext(context.Background(), q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.prepared == nil {
			c.prepared = map[string]*sql.Stmt{}
		}
		if _, dup := c.prepared[q]; dup {
			st.Close()
		} else {
			c.prepared[q] = st
		}
		c.mu.Unlock()
	}
}

// close closes every prepared statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.prepared {
		st.Close()
	}
	c.prepared, c.wanted = nil, nil
}

// stmt returns query's prepared statement bound to tx, or nil.
func (tx *Tx) stmt(query string) *sql.Stmt {
	if tx.stmts == nil {
		return nil
	}
	st := tx.stmts.get(query)
	if st == nil {
		return nil
	}
	// A transaction of several messages runs the same statements for
	// each: bound once, not once a statement.
	for _, b := range tx.bound[:tx.nbound] {
		if b.prepared == st {
			return b.bound
		}
	}
	b := tx.tx.StmtContext(tx.ctx, st)
	if tx.nbound < len(tx.bound) {
		tx.bound[tx.nbound] = boundStmt{st, b}
		tx.nbound++
	}
	return b
}

// boundStmt is a prepared statement and its form bound to a transaction.
type boundStmt struct{ prepared, bound *sql.Stmt }
