package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Contact is a person the user knows by identity key, or an identity the
// user blocked. Contacts' invitations join by themselves (unless the
// daemon holds every invitation for Join); a blocked identity's traffic
// is dropped unread.
type Contact struct {
	// Identity is the Ed25519 identity key.
	Identity []byte
	// Name is a local label, unique among contacts when not empty.
	Name    string
	AddedAt time.Time
	// VerifiedAt is when the user marked the key verified (zero: not).
	VerifiedAt time.Time
	Blocked    bool
}

// PutContact inserts or replaces a contact. A name another contact has
// returns ErrExists.
func (tx *Tx) PutContact(c Contact) error {
	if len(c.Identity) != 32 {
		return fmt.Errorf("store: put contact: %w: identity of %d bytes", ErrInvalid, len(c.Identity))
	}
	if c.AddedAt.IsZero() {
		c.AddedAt = tx.now
	}
	_, err := tx.exec(`INSERT INTO contacts (identity, name, added_at, verified_at, blocked) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (identity) DO UPDATE SET name = excluded.name, verified_at = excluded.verified_at, blocked = excluded.blocked`,
		c.Identity, c.Name, unixNano(c.AddedAt), unixNano(c.VerifiedAt), boolInt(c.Blocked))
	if isUniqueViolation(err) {
		return fmt.Errorf("store: put contact: name %q: %w", c.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: put contact: %w", err)
	}
	return nil
}

const contactColumns = `identity, name, added_at, verified_at, blocked`

func scanContact(scan func(...any) error) (Contact, error) {
	var c Contact
	var added, verified int64
	var blocked int
	if err := scan(&c.Identity, &c.Name, &added, &verified, &blocked); err != nil {
		return Contact{}, err
	}
	c.AddedAt, c.VerifiedAt, c.Blocked = fromUnixNano(added), fromUnixNano(verified), blocked != 0
	return c, nil
}

// Contact returns the entry of identity.
func (tx *Tx) Contact(identity []byte) (Contact, error) {
	return tx.contactWhere(`identity = ?`, identity)
}

// ContactByName returns the contact with that name.
func (tx *Tx) ContactByName(name string) (Contact, error) {
	if name == "" {
		return Contact{}, fmt.Errorf("store: contact: %w: empty name", ErrInvalid)
	}
	return tx.contactWhere(`name = ?`, name)
}

func (tx *Tx) contactWhere(where string, arg any) (Contact, error) {
	c, err := scanContact(tx.queryRow(`SELECT `+contactColumns+` FROM contacts WHERE `+where, arg).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("store: contact: %w", ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("store: contact: %w", err)
	}
	return c, nil
}

// Contacts returns every entry (contacts and blocked identities) by name,
// then key.
func (tx *Tx) Contacts() ([]Contact, error) {
	rows, err := tx.query(`SELECT ` + contactColumns + ` FROM contacts ORDER BY name, identity`)
	if err != nil {
		return nil, fmt.Errorf("store: contacts: %w", err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		c, err := scanContact(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: contacts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: contacts: %w", err)
	}
	return out, nil
}

// DeleteContact deletes the entry of identity.
func (tx *Tx) DeleteContact(identity []byte) error {
	res, err := tx.exec(`DELETE FROM contacts WHERE identity = ?`, identity)
	if err != nil {
		return fmt.Errorf("store: delete contact: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: delete contact %x: %w", identity, ErrNotFound)
	}
	return nil
}
