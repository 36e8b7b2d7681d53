package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// migrationDevices is the schema version of devices: each user's current
// signed list (device_lists) and the devices it names (device_members, to
// find a device's users), devices revoked for ever, and link slots, which
// live here so that nodes sharing the database agree on them.
const migrationDevices = `
CREATE TABLE device_lists (
	user_key   bytea       PRIMARY KEY CHECK (length(user_key) = 32),
	version    bigint      NOT NULL CHECK (version >= 0),
	list       bytea       NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE TABLE device_members (
	device   bytea NOT NULL CHECK (length(device) = 32),
	user_key bytea NOT NULL CHECK (length(user_key) = 32),
	PRIMARY KEY (device, user_key)
);
CREATE INDEX device_members_user ON device_members (user_key);
CREATE TABLE revoked_devices (
	device     bytea       PRIMARY KEY CHECK (length(device) = 32),
	user_key   bytea       NOT NULL,
	revoked_at timestamptz NOT NULL
);
CREATE TABLE link_slots (
	slot       bytea       PRIMARY KEY CHECK (length(slot) = 32),
	opener     bytea       NOT NULL CHECK (length(opener) = 32),
	request    bytea,
	response   bytea,
	expires_at timestamptz NOT NULL
);
CREATE INDEX link_slots_opener ON link_slots (opener, expires_at);
CREATE INDEX link_slots_age ON link_slots (expires_at);
`

// deviceLock and slotLock key the transaction-level advisory locks that
// serialize one user's list changes and one opener's slot openings (a row
// lock cannot hold a row that does not exist yet).
const (
	deviceLock = 0x71707100_64657673 // "qpq\0devs"
	slotLock   = 0x71707100_736c6f74 // "qpq\0slot"
)

func advisoryLock(ctx context.Context, tx pgx.Tx, class int64, key []byte) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(encode($2::bytea, 'hex'), $1))`, class, key)
	return err
}

// PutDeviceList implements store.Devices.
func (s *Store) PutDeviceList(ctx context.Context, user []byte, version uint64, list []byte, devices [][]byte, check store.DeviceListCheck) error {
	const op = "put device list"
	if err := store.CheckKey("user", user); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if version > math.MaxInt64 {
		return fmt.Errorf("postgres: %s: version %d: %w", op, version, store.ErrInvalid)
	}
	for _, d := range devices {
		if err := store.CheckKey("device", d); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if err := advisoryLock(ctx, tx, deviceLock, user); err != nil {
			return fmt.Errorf("postgres: %s: lock: %w", op, err)
		}
		var prev []byte
		var prevVersion int64 = -1
		err := tx.QueryRow(ctx, `SELECT list, version FROM device_lists WHERE user_key = $1`, user).Scan(&prev, &prevVersion)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if int64(version) <= prevVersion {
			return fmt.Errorf("postgres: %s: version %d, stored %d: %w", op, version, prevVersion, store.ErrStaleVersion)
		}
		rev, err := check(prev)
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.Exec(ctx, `
INSERT INTO device_lists (user_key, version, list, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_key) DO UPDATE SET version = excluded.version, list = excluded.list, updated_at = excluded.updated_at`,
			user, int64(version), list, now); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM device_members WHERE user_key = $1`, user); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		for _, d := range devices {
			if _, err := tx.Exec(ctx, `INSERT INTO device_members (device, user_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, d, user); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
		}
		for _, d := range rev.Devices {
			if err := store.CheckKey("revoked device", d); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO revoked_devices (device, user_key, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, d, user, now); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			ok, err := lockQueue(ctx, tx, d)
			if err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			if ok {
				if _, err := deleteUpTo(ctx, tx, d, math.MaxInt64); err != nil {
					return fmt.Errorf("postgres: %s: drop queue: %w", op, err)
				}
			}
			if _, err := tx.Exec(ctx, `DELETE FROM link_slots WHERE opener = $1`, d); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
		}
		for _, dir := range rev.Directories {
			if _, err := tx.Exec(ctx, `DELETE FROM key_packages WHERE identity = $1`, dir); err != nil {
				return fmt.Errorf("postgres: %s: drop key packages: %w", op, err)
			}
		}
		return nil
	})
}

// DeviceList implements store.Devices.
func (s *Store) DeviceList(ctx context.Context, user []byte) ([]byte, uint64, error) {
	const op = "device list"
	if err := store.CheckKey("user", user); err != nil {
		return nil, 0, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var list []byte
	var version int64
	err := s.read(ctx, op, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, `SELECT list, version FROM device_lists WHERE user_key = $1`, user).Scan(&list, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			list, version = nil, 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return list, uint64(version), err
}

// DeviceUsers implements store.Devices.
func (s *Store) DeviceUsers(ctx context.Context, device []byte) ([][]byte, error) {
	const op = "device users"
	if err := store.CheckKey("device", device); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var users [][]byte
	err := s.read(ctx, op, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT user_key FROM device_members WHERE device = $1 ORDER BY user_key`, device)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var u []byte
			if err := rows.Scan(&u); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
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
		return false, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var revoked bool
	err := s.read(ctx, op, func(ctx context.Context) error {
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_devices WHERE device = $1)`, device).Scan(&revoked); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return revoked, err
}

// OpenSlot implements store.Devices.
func (s *Store) OpenSlot(ctx context.Context, id, opener []byte, expires time.Time, maxOpen int) error {
	const op = "open link slot"
	if err := store.CheckSlot(id, store.BoxRequest); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if err := store.CheckKey("opener", opener); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if err := advisoryLock(ctx, tx, slotLock, opener); err != nil {
			return fmt.Errorf("postgres: %s: lock: %w", op, err)
		}
		now := s.now()
		if _, err := tx.Exec(ctx, `DELETE FROM link_slots WHERE slot = $1 AND expires_at <= $2`, id, now); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM link_slots WHERE opener = $1 AND expires_at > $2`, opener, now).Scan(&n); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if n >= maxOpen {
			return fmt.Errorf("postgres: %s: %d open link slots, limit %d: %w", op, n, maxOpen, store.ErrLimit)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO link_slots (slot, opener, expires_at) VALUES ($1, $2, $3) ON CONFLICT (slot) DO NOTHING`,
			id, opener, expires)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s: %w", op, store.ErrSlotExists)
		}
		return nil
	})
}

// Slot implements store.Devices.
func (s *Store) Slot(ctx context.Context, id []byte) (store.LinkSlot, error) {
	const op = "link slot"
	if err := store.CheckSlot(id, store.BoxRequest); err != nil {
		return store.LinkSlot{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var sl store.LinkSlot
	err := s.read(ctx, op, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, `SELECT opener, request, response, expires_at FROM link_slots WHERE slot = $1 AND expires_at > $2`,
			id, s.now()).Scan(&sl.Opener, &sl.Request, &sl.Response, &sl.Expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: %s: %w", op, store.ErrNoSlot)
		}
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return sl, err
}

// PutSlotBox implements store.Devices.
func (s *Store) PutSlotBox(ctx context.Context, id []byte, box int, payload []byte) error {
	const op = "put link box"
	if err := store.CheckSlot(id, box); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if payload == nil {
		payload = []byte{}
	}
	col := "request"
	if box == store.BoxResponse {
		col = "response"
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		var filled bool
		err := tx.QueryRow(ctx, `SELECT `+col+` IS NOT NULL FROM link_slots WHERE slot = $1 AND expires_at > $2 FOR UPDATE`,
			id, s.now()).Scan(&filled)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: %s: %w", op, store.ErrNoSlot)
		}
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if filled {
			return fmt.Errorf("postgres: %s: %w", op, store.ErrBoxFull)
		}
		if _, err := tx.Exec(ctx, `UPDATE link_slots SET `+col+` = $1 WHERE slot = $2`, bytes.Clone(payload), id); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
}

// CloseSlot implements store.Devices.
func (s *Store) CloseSlot(ctx context.Context, id, opener []byte) error {
	const op = "close link slot"
	if err := store.CheckSlot(id, store.BoxRequest); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if err := store.CheckKey("opener", opener); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM link_slots WHERE slot = $1 AND opener = $2 AND expires_at > $3`, id, opener, s.now())
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s: %w", op, store.ErrNoSlot)
		}
		return nil
	})
}

// ExpireSlots implements store.Devices.
func (s *Store) ExpireSlots(ctx context.Context, now time.Time) (int, error) {
	const op = "expire link slots"
	var n int64
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM link_slots WHERE expires_at <= $1`, now)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return int(n), err
}

// RevokedCount implements store.Devices.
func (s *Store) RevokedCount(ctx context.Context, user []byte) (int, error) {
	const op = "revoked count"
	if err := store.CheckKey("user", user); err != nil {
		return 0, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var n int
	err := s.read(ctx, op, func(ctx context.Context) error {
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM revoked_devices WHERE user_key = $1`, user).Scan(&n); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
	return n, err
}

// DeviceStates implements store.Devices.
func (s *Store) DeviceStates(ctx context.Context, keys [][]byte) ([]store.DeviceState, error) {
	const op = "device states"
	if err := store.CheckDeviceStateKeys(keys); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	byKey := make(map[string]*store.DeviceState, len(keys))
	for _, k := range keys {
		byKey[string(k)] = &store.DeviceState{}
	}
	err := s.read(ctx, op, func(ctx context.Context) error {
		for _, st := range byKey {
			*st = store.DeviceState{}
		}
		rows, err := s.pool.Query(ctx, `SELECT k.device, EXISTS (SELECT 1 FROM revoked_devices r WHERE r.device = k.device), m.user_key
			FROM (SELECT DISTINCT unnest($1::bytea[]) AS device) k
			LEFT JOIN device_members m ON m.device = k.device
			ORDER BY k.device, m.user_key`, keys)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var d, u []byte
			var revoked bool
			if err := rows.Scan(&d, &revoked, &u); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			st, ok := byKey[string(d)]
			if !ok {
				continue
			}
			st.Revoked = st.Revoked || revoked
			if u != nil {
				st.Users = append(st.Users, u)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
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
