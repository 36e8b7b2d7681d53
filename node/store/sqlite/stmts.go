package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// The statements of the write path are parsed once, when the store opens,
// on the writer's one connection: SQLite takes longer to parse most of them
// than to run them, and the writer is the node's bottleneck. A statement is
// declared with hot(query); exec, queryRow and query run a declared one
// from its prepared form and any other as it is.

// hotQueries are the statements declared with hot, in declaration order.
var hotQueries []string

// hot declares query a statement of the write path and returns it.
func hot(query string) string {
	hotQueries = append(hotQueries, query)
	return query
}

// prepareHot prepares every hot statement on w.
func prepareHot(ctx context.Context, w *sql.DB) (map[string]*sql.Stmt, error) {
	prepared := make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			closeStmts(prepared)
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		prepared[q] = st
	}
	return prepared, nil
}

// closeStmts closes prepared statements.
func closeStmts(prepared map[string]*sql.Stmt) error {
	var first error
	for _, st := range prepared {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// exec runs query in tx.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st, ok := s.hot[query]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// queryRow runs query in tx for one row.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st, ok := s.hot[query]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// query runs query in tx.
func (s *Store) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st, ok := s.hot[query]; ok {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}
