package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// The highest device list version accepted per person (user key): a node
// that hands out a lower one replays an old list (to re-admit a revoked
// device or hide a new one), and the daemon refuses it.
const migrationDeviceListVersions = `
CREATE TABLE IF NOT EXISTS device_list_versions (
	user_key BLOB PRIMARY KEY CHECK (length(user_key) = 32),
	version  INTEGER NOT NULL
);
`

// DeviceListVersion returns the highest device list version accepted for
// user; 0 when none was.
func (tx *Tx) DeviceListVersion(user []byte) (uint64, error) {
	var v int64
	err := tx.queryRow(`SELECT version FROM device_list_versions WHERE user_key = ?`, user).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: device list version: %w", err)
	}
	return uint64(v), nil
}

// NoteDeviceListVersion raises the highest accepted version for user to
// version (a lower one leaves it as it is).
func (tx *Tx) NoteDeviceListVersion(user []byte, version uint64) error {
	if len(user) != 32 {
		return fmt.Errorf("store: note device list version: %w: user key of %d bytes", ErrInvalid, len(user))
	}
	if version > math.MaxInt64 {
		return fmt.Errorf("store: note device list version: %w: version %d", ErrInvalid, version)
	}
	_, err := tx.exec(`INSERT INTO device_list_versions (user_key, version) VALUES (?, ?)
		ON CONFLICT (user_key) DO UPDATE SET version = max(version, excluded.version)`, user, int64(version))
	if err != nil {
		return fmt.Errorf("store: note device list version: %w", err)
	}
	return nil
}
