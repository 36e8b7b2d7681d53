package store

import "context"

// The SQLite driver watches the context of every statement it runs with a
// goroutine of its own, started and ended per statement, to interrupt the
// statement when the context ends. A write transaction runs a few dozen
// short statements per message, so the statements of write transactions
// run on a context that never ends: the transaction still ends with its
// context, because database/sql rolls it back when the context given to
// BeginTx is done and its Commit then fails with the context's error
// (TestUpdateEndsWithItsContext). What is lost is only the interruption of
// a statement midway, which the bounded statements of a write transaction
// do not need. Views, which may read long lists, keep it.

// stmtContext is the context tx's statements run on.
func stmtContext(ctx context.Context, readOnly bool) context.Context {
	if readOnly {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
