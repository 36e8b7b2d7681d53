package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// migrationDevices is the schema version of devices: each user's current
// signed list (device_lists) and the devices it names (device_members, to
// find a device's users), devices revoked for ever, and link slots.
const migrationDevices = `
CREATE TABLE device_lists (
	user_key   BLOB    PRIMARY KEY CHECK (length(user_key) = 32),
	version    INTEGER NOT NULL CHECK (version >= 0),
	list       BLOB    NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE device_members (
	device   BLOB NOT NULL CHECK (length(device) = 32),
	user_key BLOB NOT NULL CHECK (length(user_key) = 32),
	PRIMARY KEY (device, user_key)
) WITHOUT ROWID;
CREATE INDEX device_members_user ON device_members (user_key);
CREATE TABLE revoked_devices (
	device     BLOB    PRIMARY KEY CHECK (length(device) = 32),
	user_key   BLOB    NOT NULL,
	revoked_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE link_slots (
	slot       BLOB    PRIMARY KEY CHECK (length(slot) = 32),
	opener     BLOB    NOT NULL CHECK (length(opener) = 32),
	request    BLOB,
	response   BLOB,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX link_slots_opener ON link_slots (opener, expires_at);
CREATE INDEX link_slots_age ON link_slots (expires_at);
`

func checkVersion(v uint64) error {
	if v > math.MaxInt64 {
		return fmt.Errorf("device list version %d above %d: %w", v, int64(math.MaxInt64), store.ErrInvalid)
	}
	return nil
}

// PutDeviceList implements store.Devices.
func (s *Store) PutDeviceList(ctx context.Context, user []byte, version uint64, list []byte, devices [][]byte, check store.DeviceListCheck) error {
	const op = "put device list"
	if err := store.CheckKey("user", user); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := checkVersion(version); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	for _, d := range devices {
		if err := store.CheckKey("device", d); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var prev []byte
		var prevVersion int64 = -1
		err := tx.QueryRowContext(ctx, `SELECT list, version FROM device_lists WHERE user_key = ?`, user).Scan(&prev, &prevVersion)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if int64(version) <= prevVersion {
			return fmt.Errorf("sqlite: %s: version %d, stored %d: %w", op, version, prevVersion, store.ErrStaleVersion)
		}
		rev, err := check(prev)
		if err != nil {
			return err
		}
		now := s.now().UnixNano()
		if _, err := tx.ExecContext(ctx, `
INSERT INTO device_lists (user_key, version, list, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (user_key) DO UPDATE SET version = excluded.version, list = excluded.list, updated_at = excluded.updated_at`,
			user, int64(version), list, now); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_members WHERE user_key = ?`, user); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		for _, d := range devices {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO device_members (device, user_key) VALUES (?, ?)`, d, user); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
		}
		for _, d := range rev.Devices {
			if err := store.CheckKey("revoked device", d); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO revoked_devices (device, user_key, revoked_at) VALUES (?, ?, ?)`, d, user, now); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
			if _, err := s.deleteUpTo(ctx, tx, d, math.MaxInt64); err != nil {
				return fmt.Errorf("sqlite: %s: drop queue: %w", op, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM link_slots WHERE opener = ?`, d); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
		}
		for _, dir := range rev.Directories {
			if _, err := tx.ExecContext(ctx, `DELETE FROM key_packages WHERE identity = ?`, dir); err != nil {
				return fmt.Errorf("sqlite: %s: drop key packages: %w", op, err)
			}
		}
		return nil
	})
}

// DeviceList implements store.Devices.
func (s *Store) DeviceList(ctx context.Context, user []byte) ([]byte, uint64, error) {
	const op = "device list"
	if err := store.CheckKey("user", user); err != nil {
		return nil, 0, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var list []byte
	var version int64
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT list, version FROM device_lists WHERE user_key = ?`, user).Scan(&list, &version)
		if errors.Is(err, sql.ErrNoRows) {
			list, version = nil, 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	return list, uint64(version), err
}

// DeviceUsers implements store.Devices.
func (s *Store) DeviceUsers(ctx context.Context, device []byte) ([][]byte, error) {
	const op = "device users"
	if err := store.CheckKey("device", device); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var users [][]byte
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT user_key FROM device_members WHERE device = ? ORDER BY user_key`, device)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var u []byte
			if err := rows.Scan(&u); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
			users = append(users, u)
		}
		return rows.Err()
	})
	return users, err
}

// Revoked implements store.Devices.
func (s *Store) Revoked(ctx context.Context, device []byte) (bool, error) {
	const op = "revoked"
	if err := store.CheckKey("device", device); err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var revoked bool
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM revoked_devices WHERE device = ?`, device).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		revoked = true
		return nil
	})
	return revoked, err
}

// OpenSlot implements store.Devices.
func (s *Store) OpenSlot(ctx context.Context, id, opener []byte, expires time.Time, maxOpen int) error {
	const op = "open link slot"
	if err := store.CheckSlot(id, store.BoxRequest); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := store.CheckKey("opener", opener); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now().UnixNano()
		if _, err := tx.ExecContext(ctx, `DELETE FROM link_slots WHERE slot = ? AND expires_at <= ?`, id, now); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM link_slots WHERE opener = ? AND expires_at > ?`, opener, now).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if n >= maxOpen {
			return fmt.Errorf("sqlite: %s: %d open link slots, limit %d: %w", op, n, maxOpen, store.ErrLimit)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO link_slots (slot, opener, expires_at) VALUES (?, ?, ?) ON CONFLICT (slot) DO NOTHING`,
			id, opener, expires.UnixNano())
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: %s: %w", op, store.ErrSlotExists)
		}
		return nil
	})
}

// Slot implements store.Devices.
func (s *Store) Slot(ctx context.Context, id []byte) (store.LinkSlot, error) {
	const op = "link slot"
	if err := store.CheckSlot(id, store.BoxRequest); err != nil {
		return store.LinkSlot{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var sl store.LinkSlot
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		var exp int64
		err := tx.QueryRowContext(ctx, `SELECT opener, request, response, expires_at FROM link_slots WHERE slot = ? AND expires_at > ?`,
			id, s.now().UnixNano()).Scan(&sl.Opener, &sl.Request, &sl.Response, &exp)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: %w", op, store.ErrNoSlot)
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		sl.Expires = time.Unix(0, exp)
		return nil
	})
	return sl, err
}

// PutSlotBox implements store.Devices.
func (s *Store) PutSlotBox(ctx context.Context, id []byte, box int, payload []byte) error {
	const op = "put link box"
	if err := store.CheckSlot(id, box); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if payload == nil {
		payload = []byte{}
	}
	col := "request"
	if box == store.BoxResponse {
		col = "response"
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var filled bool
		err := tx.QueryRowContext(ctx, `SELECT `+col+` IS NOT NULL FROM link_slots WHERE slot = ? AND expires_at > ?`,
			id, s.now().UnixNano()).Scan(&filled)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: %w", op, store.ErrNoSlot)
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if filled {
			return fmt.Errorf("sqlite: %s: %w", op, store.ErrBoxFull)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE link_slots SET `+col+` = ? WHERE slot = ?`, bytes.Clone(payload), id); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
}

// CloseSlot implements store.Devices.
func (s *Store) CloseSlot(ctx context.Context, id, opener []byte) error {
	const op = "close link slot"
	if err := store.CheckSlot(id, store.BoxRequest); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := store.CheckKey("opener", opener); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM link_slots WHERE slot = ? AND opener = ? AND expires_at > ?`, id, opener, s.now().UnixNano())
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: %s: %w", op, store.ErrNoSlot)
		}
		return nil
	})
}

// ExpireSlots implements store.Devices.
func (s *Store) ExpireSlots(ctx context.Context, now time.Time) (int, error) {
	const op = "expire link slots"
	var n int64
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM link_slots WHERE expires_at <= ?`, now.UnixNano())
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// RevokedCount implements store.Devices.
func (s *Store) RevokedCount(ctx context.Context, user []byte) (int, error) {
	const op = "revoked count"
	if err := store.CheckKey("user", user); err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var n int
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM revoked_devices WHERE user_key = ?`, user).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
	return n, err
}

// deviceStatesChunk bounds the keys bound in one SQLite statement (its
// limit of variables is far above).
const deviceStatesChunk = 500

// DeviceStates implements store.Devices.
func (s *Store) DeviceStates(ctx context.Context, keys [][]byte) ([]store.DeviceState, error) {
	const op = "device states"
	if err := store.CheckDeviceStateKeys(keys); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	byKey := make(map[string]*store.DeviceState, len(keys))
	for _, k := range keys {
		byKey[string(k)] = &store.DeviceState{}
	}
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		for _, st := range byKey {
			*st = store.DeviceState{}
		}
		for start := 0; start < len(keys); start += deviceStatesChunk {
			chunk := keys[start:min(start+deviceStatesChunk, len(keys))]
			in := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
			args := make([]any, len(chunk))
			for i, k := range chunk {
				args[i] = k
			}
			if err := deviceStateRows(ctx, tx, `SELECT device, NULL FROM revoked_devices WHERE device IN (`+in+`)`, args, byKey, true); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
			if err := deviceStateRows(ctx, tx, `SELECT device, user_key FROM device_members WHERE device IN (`+in+`) ORDER BY device, user_key`, args, byKey, false); err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.DeviceState, len(keys))
	for i, k := range keys {
		out[i] = *byKey[string(k)]
	}
	return out, nil
}

// deviceStateRows reads (device, user) rows into byKey: a revocation when
// revoked, a listing user otherwise.
func deviceStateRows(ctx context.Context, tx *sql.Tx, query string, args []any, byKey map[string]*store.DeviceState, revoked bool) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var d, u []byte
		if err := rows.Scan(&d, &u); err != nil {
			return err
		}
		st, ok := byKey[string(d)]
		switch {
		case !ok:
		case revoked:
			st.Revoked = true
		default:
			st.Users = append(st.Users, u)
		}
	}
	return rows.Err()
}
