package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quicproquo/quicproquo/node/store"
)

// Kinds of group_dedup rows.
const (
	kindCommit      = 1
	kindApplication = 2
)

// group is a group's row, locked by lockGroup.
type group struct {
	epoch int64  // the epoch the next commit must name
	view  []byte // the encoded public view
}

// lockGroup locks groupID's row and reports store.ErrNotMember unless the
// group was created and its roster lists sender. Every commit and fan-out
// of a group takes this lock first, so they run one at a time per group
// (on every node sharing the database), and the check of the view and the
// advance cannot interleave.
func lockGroup(ctx context.Context, tx pgx.Tx, groupID, sender []byte) (group, error) {
	var g group
	err := tx.QueryRow(ctx, `SELECT epoch, view FROM groups WHERE group_id = $1 AND view IS NOT NULL FOR UPDATE`, groupID).Scan(&g.epoch, &g.view)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return g, fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return g, fmt.Errorf("lock group: %w", err)
	}
	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM group_members WHERE group_id = $1 AND identity = $2`, groupID, sender).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return g, fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return g, fmt.Errorf("check roster: %w", err)
	}
	return g, nil
}

// advancePlain numbers an application message of groupID from sender: the
// group's row is locked and its number advanced, the view left as it is,
// and sender checked against the roster. (A refusal leaves the advance
// behind, for the caller to roll back.)
func advancePlain(ctx context.Context, tx pgx.Tx, groupID, sender []byte) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `UPDATE groups SET last_seq = last_seq + 1 WHERE group_id = $1 AND view IS NOT NULL RETURNING last_seq`, groupID).Scan(&seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return 0, fmt.Errorf("advance group: %w", err)
	}
	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM group_members WHERE group_id = $1 AND identity = $2`, groupID, sender).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return 0, fmt.Errorf("check roster: %w", err)
	}
	return seq, nil
}

// groupDedup is a remembered commit or application message.
type groupDedup struct {
	kind     int16
	digest   []byte
	epoch    int64
	groupSeq int64
}

// lookupGroupDedup finds the remembered submission of (group, sender, id), if any.
func lookupGroupDedup(ctx context.Context, tx pgx.Tx, groupID, sender, clientMsgID []byte) (*groupDedup, error) {
	var d groupDedup
	err := tx.QueryRow(ctx, `
SELECT kind, digest, epoch, group_seq FROM group_dedup
WHERE group_id = $1 AND sender = $2 AND client_msg_id = $3`, groupID, sender, clientMsgID).
		Scan(&d.kind, &d.digest, &d.epoch, &d.groupSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// matches reports store.ErrInvalid when a client message id is reused for
// another kind of submission or other bytes.
func (d *groupDedup) matches(kind int16, digest [32]byte) error {
	if d.kind != kind || !bytes.Equal(d.digest, digest[:]) {
		return fmt.Errorf("client message id already used for a different submission: %w", store.ErrInvalid)
	}
	return nil
}

// setRoster makes roster the group's roster, replacing the previous one.
func setRoster(ctx context.Context, tx pgx.Tx, groupID []byte, roster [][]byte) error {
	if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = $1`, groupID); err != nil {
		return fmt.Errorf("clear roster: %w", err)
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO group_members (group_id, identity) SELECT DISTINCT $1::bytea, m FROM unnest($2::bytea[]) AS m`,
		groupID, roster); err != nil {
		return fmt.Errorf("store roster: %w", err)
	}
	return nil
}

// otherMembers lists the roster of groupID without sender.
func otherMembers(ctx context.Context, tx pgx.Tx, groupID, sender []byte) ([][]byte, error) {
	rows, err := tx.Query(ctx, `SELECT identity FROM group_members WHERE group_id = $1 AND identity <> $2
AND identity NOT IN (SELECT device FROM revoked_devices) ORDER BY identity`, groupID, sender)
	if err != nil {
		return nil, fmt.Errorf("read roster: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read roster: %w", err)
	}
	return out, nil
}

// CreateGroup implements store.Store.
func (s *Store) CreateGroup(ctx context.Context, groupID, creator []byte, epoch uint64, view []byte, roster [][]byte) error {
	const op = "create group"
	if err := store.CheckCreateGroup(groupID, creator, epoch, view, roster); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
INSERT INTO groups (group_id, epoch, last_seq, created_at, view, creator) VALUES ($1, $2, 0, $3, $4, $5)
ON CONFLICT (group_id) DO NOTHING`, groupID, int64(epoch), s.now(), view, creator)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s: group %x: %w", op, groupID, store.ErrGroupExists)
		}
		if err := setRoster(ctx, tx, groupID, roster); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	})
}

// rememberGroup records a deduplicated submission.
func rememberGroup(ctx context.Context, tx pgx.Tx, groupID, sender, clientMsgID []byte, kind int16, digest [32]byte,
	epoch, seq int64, now time.Time) error {
	if _, err := tx.Exec(ctx, `
INSERT INTO group_dedup (group_id, sender, client_msg_id, kind, digest, epoch, group_seq, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, groupID, sender, clientMsgID, kind, digest[:], epoch, seq, now); err != nil {
		return fmt.Errorf("remember client message id: %w", err)
	}
	return nil
}

// SubmitCommit implements store.Store.
func (s *Store) SubmitCommit(ctx context.Context, groupID []byte, epoch uint64, sender, clientMsgID, commit, welcome []byte,
	check store.CommitCheck) (store.CommitResult, error) {
	const op = "submit commit"
	err := errors.Join(store.CheckGroupID(groupID), store.CheckKey("sender", sender), store.CheckClientMsgID(clientMsgID))
	if err == nil && len(commit) == 0 {
		err = fmt.Errorf("empty commit: %w", store.ErrInvalid)
	}
	if err == nil && check == nil {
		err = fmt.Errorf("no commit check: %w", store.ErrInvalid)
	}
	if err == nil && epoch >= math.MaxInt64 {
		err = fmt.Errorf("epoch %d out of range: %w", epoch, store.ErrInvalid)
	}
	if err != nil {
		return store.CommitResult{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	digest := sha256.Sum256(commit)
	var res store.CommitResult
	err = s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		res = store.CommitResult{}
		now := s.now()
		if len(clientMsgID) > 0 {
			d, err := lookupGroupDedup(ctx, tx, groupID, sender, clientMsgID)
			if err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			if d != nil {
				if err := d.matches(kindCommit, digest); err != nil {
					return fmt.Errorf("postgres: %s: %w", op, err)
				}
				res = store.CommitResult{Epoch: uint64(d.epoch), GroupSeq: uint64(d.groupSeq), Duplicate: true}
				return errRollback
			}
		}
		g, err := lockGroup(ctx, tx, groupID, sender)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if g.epoch != int64(epoch) {
			return fmt.Errorf("postgres: %s: group %x: %w", op, groupID,
				&store.StaleEpochError{Epoch: epoch, Current: uint64(g.epoch)})
		}
		v, err := check(store.GroupView{Epoch: epoch, View: g.view})
		if err != nil {
			return err
		}
		if err := store.CheckVerdict(&v, welcome); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		var seq int64
		if err := tx.QueryRow(ctx, `
UPDATE groups SET epoch = $2, last_seq = last_seq + 1, view = $3 WHERE group_id = $1 RETURNING last_seq`,
			groupID, int64(epoch)+1, v.View).Scan(&seq); err != nil {
			return fmt.Errorf("postgres: %s: advance epoch: %w", op, err)
		}
		if err := setRoster(ctx, tx, groupID, v.Roster); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if _, err := s.appendTx(ctx, tx, sender, clientMsgID, now,
			delivery{v.Recipients, commit, seq}, delivery{v.WelcomeRecipients, welcome, seq}); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if len(clientMsgID) > 0 {
			if err := rememberGroup(ctx, tx, groupID, sender, clientMsgID, kindCommit, digest, int64(epoch), seq, now); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
		}
		res = store.CommitResult{Epoch: epoch, GroupSeq: uint64(seq)}
		return nil
	})
	if err != nil {
		return store.CommitResult{}, err
	}
	return res, nil
}

// FanOut implements store.Store.
func (s *Store) FanOut(ctx context.Context, groupID, sender, clientMsgID, payload []byte, update store.ViewUpdate) (store.FanOutResult, error) {
	const op = "fan out"
	if err := checkFanOut(groupID, sender, clientMsgID, payload); err != nil {
		return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var res store.FanOutResult
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) (err error) {
		res, err = s.fanOutOne(ctx, tx, op, sender, store.FanOutItem{GroupID: groupID, ClientMsgID: clientMsgID, Payload: payload, Update: update})
		if err == nil && res.Duplicate {
			return errRollback
		}
		return err
	})
	if err != nil {
		return store.FanOutResult{}, err
	}
	return res, nil
}

// checkFanOut checks the arguments of one fanned-out message.
func checkFanOut(groupID, sender, clientMsgID, payload []byte) error {
	err := errors.Join(store.CheckGroupID(groupID), store.CheckKey("sender", sender), store.CheckClientMsgID(clientMsgID))
	if err == nil && len(payload) == 0 {
		err = fmt.Errorf("empty payload: %w", store.ErrInvalid)
	}
	return err
}

// fanOutOne stores one fanned-out message in tx (see FanOut); a refusal
// may leave writes behind, for the caller to roll back.
func (s *Store) fanOutOne(ctx context.Context, tx pgx.Tx, op string, sender []byte, it store.FanOutItem) (store.FanOutResult, error) {
	groupID, clientMsgID, payload, update := it.GroupID, it.ClientMsgID, it.Payload, it.Update
	digest := sha256.Sum256(payload)
	now := s.now()
	if len(clientMsgID) > 0 {
		d, err := lookupGroupDedup(ctx, tx, groupID, sender, clientMsgID)
		if err != nil {
			return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
		}
		if d != nil {
			if err := d.matches(kindApplication, digest); err != nil {
				return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
			}
			return store.FanOutResult{GroupSeq: uint64(d.groupSeq), Duplicate: true}, nil
		}
	}
	var seq int64
	if update == nil {
		// An application message changes nothing of the view: the group's
		// number advances (its row locked by the UPDATE) without the view
		// read or written again, which would store it whole once more.
		var err error
		if seq, err = advancePlain(ctx, tx, groupID, sender); err != nil {
			return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
		}
	} else {
		g, err := lockGroup(ctx, tx, groupID, sender)
		if err != nil {
			return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
		}
		view, err := update(store.GroupView{Epoch: uint64(g.epoch), View: g.view})
		if err != nil {
			return store.FanOutResult{}, err
		}
		if len(view) == 0 {
			return store.FanOutResult{}, fmt.Errorf("postgres: %s: empty view: %w", op, store.ErrInvalid)
		}
		if err := tx.QueryRow(ctx, `
UPDATE groups SET last_seq = last_seq + 1, view = $2 WHERE group_id = $1 RETURNING last_seq`, groupID, view).Scan(&seq); err != nil {
			return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
		}
	}
	recipients, err := otherMembers(ctx, tx, groupID, sender)
	if err != nil {
		return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	if _, err := s.appendTx(ctx, tx, sender, clientMsgID, now, delivery{recipients, payload, seq}); err != nil {
		return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	if len(clientMsgID) > 0 {
		if err := rememberGroup(ctx, tx, groupID, sender, clientMsgID, kindApplication, digest, 0, seq, now); err != nil {
			return store.FanOutResult{}, fmt.Errorf("postgres: %s: %w", op, err)
		}
	}
	return store.FanOutResult{GroupSeq: uint64(seq), Recipients: recipients}, nil
}

// GroupState implements store.Store.
func (s *Store) GroupState(ctx context.Context, groupID, member []byte) (store.GroupState, error) {
	const op = "group state"
	if err := errors.Join(store.CheckGroupID(groupID), store.CheckKey("member", member)); err != nil {
		return store.GroupState{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var gs store.GroupState
	err := s.read(ctx, op, func(ctx context.Context) error {
		var epoch, last int64
		err := s.pool.QueryRow(ctx, `
SELECT g.epoch, g.last_seq, (SELECT count(*) FROM group_members c WHERE c.group_id = g.group_id)
FROM groups g JOIN group_members m ON m.group_id = g.group_id AND m.identity = $1
WHERE g.group_id = $2 AND g.view IS NOT NULL`, member, groupID).Scan(&epoch, &last, &gs.Members)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: %s: group %x: %x: %w", op, groupID, member, store.ErrNotMember)
		}
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		gs.Epoch, gs.LastSeq = uint64(epoch), uint64(last)
		return nil
	})
	return gs, err
}
