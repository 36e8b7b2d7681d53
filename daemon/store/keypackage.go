package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// KeyPackageSecret is a KeyPackage with its private half. It is stored
// before the KeyPackage is uploaded and deleted once used.
type KeyPackageSecret struct {
	// Ref is the KeyPackageRef (RFC 9420 section 5.2).
	Ref []byte
	// KeyPackage is the public KeyPackage as uploaded.
	KeyPackage []byte
	// Secrets is the serialized private material (init and leaf keys).
	Secrets    []byte
	LastResort bool
	CreatedAt  time.Time
	// UploadedAt is zero until the node has accepted the KeyPackage.
	UploadedAt time.Time
	// ExpiresAt is zero for no expiry.
	ExpiresAt time.Time
}

// PutKeyPackage stores a KeyPackage and its secrets. A duplicate ref returns
// ErrExists.
func (tx *Tx) PutKeyPackage(kp KeyPackageSecret) error {
	if len(kp.Ref) == 0 || len(kp.KeyPackage) == 0 || len(kp.Secrets) == 0 {
		return fmt.Errorf("store: put key package: %w: empty ref, package or secrets", ErrInvalid)
	}
	created := kp.CreatedAt
	if created.IsZero() {
		created = tx.now
	}
	res, err := tx.exec(`INSERT INTO key_packages (ref, key_package, secrets, last_resort, created_at, uploaded_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ref) DO NOTHING`,
		kp.Ref, kp.KeyPackage, kp.Secrets, boolInt(kp.LastResort), unixNano(created), unixNano(kp.UploadedAt), unixNano(kp.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: put key package: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: put key package: %w", ErrExists)
	}
	return nil
}

const keyPackageColumns = `ref, key_package, secrets, last_resort, created_at, uploaded_at, expires_at`

func scanKeyPackage(scan func(...any) error) (KeyPackageSecret, error) {
	var kp KeyPackageSecret
	var lr int
	var created, uploaded, expires int64
	if err := scan(&kp.Ref, &kp.KeyPackage, &kp.Secrets, &lr, &created, &uploaded, &expires); err != nil {
		return KeyPackageSecret{}, err
	}
	kp.LastResort = lr != 0
	kp.CreatedAt, kp.UploadedAt, kp.ExpiresAt = fromUnixNano(created), fromUnixNano(uploaded), fromUnixNano(expires)
	return kp, nil
}

// KeyPackage returns the KeyPackage with the given ref.
func (tx *Tx) KeyPackage(ref []byte) (KeyPackageSecret, error) {
	kp, err := scanKeyPackage(tx.queryRow(`SELECT `+keyPackageColumns+` FROM key_packages WHERE ref = ?`, ref).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return KeyPackageSecret{}, fmt.Errorf("store: key package %x: %w", ref, ErrNotFound)
	}
	if err != nil {
		return KeyPackageSecret{}, fmt.Errorf("store: read key package: %w", err)
	}
	return kp, nil
}

// KeyPackages returns every stored KeyPackage, oldest first.
func (tx *Tx) KeyPackages() ([]KeyPackageSecret, error) {
	rows, err := tx.query(`SELECT ` + keyPackageColumns + ` FROM key_packages ORDER BY created_at, ref`)
	if err != nil {
		return nil, fmt.Errorf("store: key packages: %w", err)
	}
	defer rows.Close()
	var out []KeyPackageSecret
	for rows.Next() {
		kp, err := scanKeyPackage(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("store: key packages: %w", err)
		}
		out = append(out, kp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: key packages: %w", err)
	}
	return out, nil
}

// MarkKeyPackageUploaded records that the node accepted the KeyPackage.
func (tx *Tx) MarkKeyPackageUploaded(ref []byte) error {
	res, err := tx.exec(`UPDATE key_packages SET uploaded_at = ? WHERE ref = ?`, unixNano(tx.now), ref)
	if err != nil {
		return fmt.Errorf("store: mark key package uploaded: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: mark key package %x uploaded: %w", ref, ErrNotFound)
	}
	return nil
}

// DeleteKeyPackage deletes a used KeyPackage and its secrets.
func (tx *Tx) DeleteKeyPackage(ref []byte) error {
	res, err := tx.exec(`DELETE FROM key_packages WHERE ref = ?`, ref)
	if err != nil {
		return fmt.Errorf("store: delete key package: %w", err)
	}
	tx.scrub = true
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: delete key package %x: %w", ref, ErrNotFound)
	}
	return nil
}

// CountKeyPackages counts the stored KeyPackage secrets.
func (tx *Tx) CountKeyPackages() (int, error) {
	var n int
	if err := tx.queryRow(`SELECT COUNT(*) FROM key_packages`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count key packages: %w", err)
	}
	return n, nil
}
