package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
)

// Views read through their own connections, so that a read (the history,
// the groups, the contacts an API call lists) does not wait behind a write
// transaction and its fsync. SQLite in WAL mode lets readers run beside
// the one writer, each on the snapshot of the last commit it saw. The
// reader connections:
//
//   - open only after the migrations ran, and refuse every write at the
//     database (query_only), whatever the Tx guards let through;
//   - begin deferred transactions, which take no lock until they read and
//     hold their snapshot only until the view ends. An idle reader holds
//     no snapshot, so the truncating checkpoint of scrub.go still empties
//     the log; one that meets a running view waits for it (busy_timeout),
//     as views are short;
//   - keep their own prepared statements (a statement belongs to the pool
//     it was prepared on).
//
// The memo of decoded values serves the write path only (memo.go), so
// views decode; the expanded identity key is shared, under its lock.

// readerConns is the number of reader connections.
const readerConns = 2

// openReaders opens the pool of reader connections to path.
func openReaders(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	q.Set("_txlock", "deferred")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open readers of %s: %w", path, err)
	}
	db.SetMaxOpenConns(readerConns)
	db.SetMaxIdleConns(readerConns)
	return db, nil
}

// view runs fn in a read transaction on a reader connection.
func (s *Store) view(ctx context.Context, fn func(*Tx) error) error {
	defer s.rstmts.prepareWanted(s.readers)
	return s.runTxOn(ctx, true, &s.rstmts, fn, func() (*sql.Tx, error) {
		return s.readers.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	})
}
