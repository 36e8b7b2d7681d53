package store

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/internal/transport"
)

// NodeCursor is the sequence number of the last node queue entry applied
// (0 before any).
func (tx *Tx) NodeCursor() (uint64, error) {
	var n int64
	err := tx.queryRow(`SELECT cursor FROM node_state WHERE id = 1`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: node cursor: %w", err)
	}
	return uint64(n), nil
}

// SetNodeCursor advances the node cursor. Moving it backwards is refused:
// that would apply messages twice.
func (tx *Tx) SetNodeCursor(seq uint64) error {
	// One statement: the upsert moves the cursor only forwards, and a row
	// left alone is a refusal, named by a read (the rare path).
	res, err := tx.exec(`INSERT INTO node_state (id, cursor) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor
		WHERE node_state.cursor <= excluded.cursor`, int64(seq))
	if err != nil {
		return fmt.Errorf("store: set node cursor: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: set node cursor: %w", err)
	}
	if n == 1 {
		return nil
	}
	cur, err := tx.NodeCursor()
	if err != nil {
		return err
	}
	return fmt.Errorf("store: set node cursor: %w: %d is behind %d", ErrInvalid, seq, cur)
}

// ResetNodeCursor moves the node cursor back to 0, for a node whose queue
// is behind it (the node refused the cursor as ahead of its queue: its
// database is older than what this daemon read). Everything the node
// still holds is read again; what was applied before is recognised as
// such (the message ids, MLS's replay protection).
func (tx *Tx) ResetNodeCursor() error {
	if _, err := tx.exec(`UPDATE node_state SET cursor = 0 WHERE id = 1`); err != nil {
		return fmt.Errorf("store: reset node cursor: %w", err)
	}
	return nil
}

// PinnedCert is a node certificate pinned for an address.
type PinnedCert struct {
	Address     string
	Cert        []byte
	Fingerprint [32]byte
	PinnedAt    time.Time
}

// Matches reports whether der carries the pinned certificate's public key
// (constant time): the node's renewals of its certificate match.
func (p PinnedCert) Matches(der []byte) bool {
	return transport.SameKey(p.Cert, der)
}

// PinnedCert returns the certificate pinned for address, or ErrNotFound.
func (tx *Tx) PinnedCert(address string) (PinnedCert, error) {
	var p PinnedCert
	var fp []byte
	var at int64
	err := tx.queryRow(`SELECT address, cert, fingerprint, pinned_at FROM pinned_certs WHERE address = ?`, address).Scan(&p.Address, &p.Cert, &fp, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return PinnedCert{}, fmt.Errorf("store: pinned certificate for %s: %w", address, ErrNotFound)
	}
	if err != nil {
		return PinnedCert{}, fmt.Errorf("store: read pinned certificate: %w", err)
	}
	if len(fp) != len(p.Fingerprint) {
		return PinnedCert{}, fmt.Errorf("store: pinned certificate fingerprint has %d bytes: %w", len(fp), ErrInvalid)
	}
	copy(p.Fingerprint[:], fp)
	p.PinnedAt = fromUnixNano(at)
	return p, nil
}

// PinCert pins der for address, replacing an earlier pin.
func (tx *Tx) PinCert(address string, der []byte) (PinnedCert, error) {
	if address == "" || len(der) == 0 {
		return PinnedCert{}, fmt.Errorf("store: pin certificate: %w: empty address or certificate", ErrInvalid)
	}
	p := PinnedCert{Address: address, Cert: der, Fingerprint: sha256.Sum256(der), PinnedAt: tx.now}
	_, err := tx.exec(`INSERT INTO pinned_certs (address, cert, fingerprint, pinned_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET cert = excluded.cert, fingerprint = excluded.fingerprint, pinned_at = excluded.pinned_at`,
		address, der, p.Fingerprint[:], unixNano(tx.now))
	if err != nil {
		return PinnedCert{}, fmt.Errorf("store: pin certificate: %w", err)
	}
	return p, nil
}

// Welcome is a Welcome message waiting to be processed.
type Welcome struct {
	ID         int64
	Payload    []byte
	Sender     []byte
	ReceivedAt time.Time
	// Request: from a non-contact, waiting for the user's consent; Join
	// does not take it.
	Request bool
}

// AddWelcome stores a Welcome for later processing.
func (tx *Tx) AddWelcome(w Welcome) (Welcome, error) {
	if len(w.Payload) == 0 {
		return Welcome{}, fmt.Errorf("store: add welcome: %w: empty payload", ErrInvalid)
	}
	w.ReceivedAt = tx.now
	res, err := tx.exec(`INSERT INTO welcomes (payload, sender, received_at, request) VALUES (?, ?, ?, ?)`, w.Payload, w.Sender, unixNano(tx.now), boolInt(w.Request))
	if err != nil {
		return Welcome{}, fmt.Errorf("store: add welcome: %w", err)
	}
	if w.ID, err = res.LastInsertId(); err != nil {
		return Welcome{}, fmt.Errorf("store: add welcome: %w", err)
	}
	return w, nil
}

// Welcomes returns up to limit pending Welcomes that are not requests,
// oldest first.
func (tx *Tx) Welcomes(limit int) ([]Welcome, error) {
	return tx.welcomes(`WHERE request = 0 ORDER BY id LIMIT ?`, limit)
}

// Requests returns the Welcomes waiting for consent, oldest first.
func (tx *Tx) Requests() ([]Welcome, error) {
	return tx.welcomes(`WHERE request = 1 ORDER BY id`)
}

// Request returns one Welcome waiting for consent.
func (tx *Tx) Request(id int64) (Welcome, error) {
	ws, err := tx.welcomes(`WHERE request = 1 AND id = ?`, id)
	if err != nil {
		return Welcome{}, err
	}
	if len(ws) == 0 {
		return Welcome{}, fmt.Errorf("store: request %d: %w", id, ErrNotFound)
	}
	return ws[0], nil
}

// CountRequests reports how many Welcomes wait for consent and their
// total size in bytes.
func (tx *Tx) CountRequests() (n int, size int64, err error) {
	if err := tx.queryRow(`SELECT COUNT(*), coalesce(SUM(length(payload)), 0) FROM welcomes WHERE request = 1`).Scan(&n, &size); err != nil {
		return 0, 0, fmt.Errorf("store: count requests: %w", err)
	}
	return n, size, nil
}

// DeleteRequestsFrom deletes the requests sent by sender and reports how
// many there were.
func (tx *Tx) DeleteRequestsFrom(sender []byte) (int, error) {
	res, err := tx.exec(`DELETE FROM welcomes WHERE request = 1 AND sender = ?`, sender)
	if err != nil {
		return 0, fmt.Errorf("store: delete requests: %w", err)
	}
	tx.scrub = true
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (tx *Tx) welcomes(where string, args ...any) ([]Welcome, error) {
	rows, err := tx.query(`SELECT id, payload, sender, received_at, request FROM welcomes `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: welcomes: %w", err)
	}
	defer rows.Close()
	var out []Welcome
	for rows.Next() {
		var w Welcome
		var at int64
		var req int
		if err := rows.Scan(&w.ID, &w.Payload, &w.Sender, &at, &req); err != nil {
			return nil, fmt.Errorf("store: welcomes: %w", err)
		}
		w.ReceivedAt, w.Request = fromUnixNano(at), req != 0
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: welcomes: %w", err)
	}
	return out, nil
}

// DeleteWelcome removes a processed Welcome.
func (tx *Tx) DeleteWelcome(id int64) error {
	res, err := tx.exec(`DELETE FROM welcomes WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: delete welcome: %w", err)
	}
	tx.scrub = true
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: delete welcome %d: %w", id, ErrNotFound)
	}
	return nil
}

// UnpinCert forgets the certificate pinned for address, so that the next
// connection pins the one it sees. It reports whether a pin existed.
func (tx *Tx) UnpinCert(address string) (bool, error) {
	res, err := tx.exec(`DELETE FROM pinned_certs WHERE address = ?`, address)
	if err != nil {
		return false, fmt.Errorf("store: unpin certificate: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
