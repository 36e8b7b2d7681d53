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
	committed bool  // a commit was accepted: epoch and the roster are known
	epoch     int64 // the epoch the next commit must name, when committed
}

// lockGroup locks groupID's row, creating it (no commit yet, no sequence
// number handed out) if the group is new; a call that fails rolls the new
// row back with everything else. Every commit and fan-out of a group takes
// this lock first, so they run one at a time per group, and the epoch
// check and advance cannot interleave.
func lockGroup(ctx context.Context, tx pgx.Tx, groupID []byte, now time.Time) (group, error) {
	var epoch *int64
	if err := tx.QueryRow(ctx, `
INSERT INTO groups AS g (group_id, epoch, last_seq, created_at) VALUES ($1, NULL, 0, $2)
ON CONFLICT (group_id) DO UPDATE SET last_seq = g.last_seq
RETURNING epoch`, groupID, now).Scan(&epoch); err != nil {
		return group{}, fmt.Errorf("lock group: %w", err)
	}
	if epoch == nil {
		return group{}, nil
	}
	return group{committed: true, epoch: *epoch}, nil
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

// checkMember reports store.ErrNotMember when g has a roster (it has an
// accepted commit) that does not list sender.
func checkMember(ctx context.Context, tx pgx.Tx, g group, groupID, sender []byte) error {
	if !g.committed {
		return nil
	}
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM group_members WHERE group_id = $1 AND identity = $2`, groupID, sender).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return fmt.Errorf("check roster: %w", err)
	}
	return nil
}

// setRoster makes sender, recipients and welcomeRecipients the group's
// roster, replacing the previous one.
func setRoster(ctx context.Context, tx pgx.Tx, groupID, sender []byte, recipients, welcomeRecipients [][]byte) error {
	if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = $1`, groupID); err != nil {
		return fmt.Errorf("clear roster: %w", err)
	}
	all := make([][]byte, 0, 1+len(recipients)+len(welcomeRecipients))
	all = append(append(append(all, sender), recipients...), welcomeRecipients...)
	if _, err := tx.Exec(ctx, `
INSERT INTO group_members (group_id, identity) SELECT DISTINCT $1::bytea, m FROM unnest($2::bytea[]) AS m`,
		groupID, all); err != nil {
		return fmt.Errorf("store roster: %w", err)
	}
	return nil
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
func (s *Store) SubmitCommit(ctx context.Context, groupID []byte, epoch uint64, sender, clientMsgID, commit []byte,
	recipients [][]byte, welcome []byte, welcomeRecipients [][]byte) (store.CommitResult, error) {
	const op = "submit commit"
	err := errors.Join(store.CheckGroupID(groupID), store.CheckKey("sender", sender), store.CheckClientMsgID(clientMsgID),
		store.CheckRecipients("recipients", recipients), store.CheckRecipients("welcome recipients", welcomeRecipients))
	if err == nil && len(commit) == 0 {
		err = fmt.Errorf("empty commit: %w", store.ErrInvalid)
	}
	if err == nil && (len(welcome) == 0) != (len(welcomeRecipients) == 0) {
		err = fmt.Errorf("welcome of %d bytes for %d recipients: %w", len(welcome), len(welcomeRecipients), store.ErrInvalid)
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
		g, err := lockGroup(ctx, tx, groupID, now)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
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
		if err := checkMember(ctx, tx, g, groupID, sender); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if g.committed && g.epoch != int64(epoch) {
			return fmt.Errorf("postgres: %s: group %x: %w", op, groupID,
				&store.StaleEpochError{Epoch: epoch, Current: uint64(g.epoch)})
		}
		var seq int64
		if err := tx.QueryRow(ctx, `
UPDATE groups SET epoch = $2, last_seq = last_seq + 1 WHERE group_id = $1 RETURNING last_seq`,
			groupID, int64(epoch)+1).Scan(&seq); err != nil {
			return fmt.Errorf("postgres: %s: advance epoch: %w", op, err)
		}
		if err := setRoster(ctx, tx, groupID, sender, recipients, welcomeRecipients); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if _, err := s.appendTx(ctx, tx, sender, clientMsgID, now,
			delivery{recipients, commit}, delivery{welcomeRecipients, welcome}); err != nil {
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
func (s *Store) FanOut(ctx context.Context, groupID, sender, clientMsgID, payload []byte, recipients [][]byte) (uint64, bool, error) {
	const op = "fan out"
	err := errors.Join(store.CheckGroupID(groupID), store.CheckKey("sender", sender), store.CheckClientMsgID(clientMsgID),
		store.CheckRecipients("recipients", recipients))
	if err == nil && len(payload) == 0 {
		err = fmt.Errorf("empty payload: %w", store.ErrInvalid)
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: %s: %w", op, err)
	}
	digest := sha256.Sum256(payload)
	var (
		seq int64
		dup bool
	)
	err = s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		seq, dup = 0, false
		now := s.now()
		g, err := lockGroup(ctx, tx, groupID, now)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if len(clientMsgID) > 0 {
			d, err := lookupGroupDedup(ctx, tx, groupID, sender, clientMsgID)
			if err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			if d != nil {
				if err := d.matches(kindApplication, digest); err != nil {
					return fmt.Errorf("postgres: %s: %w", op, err)
				}
				seq, dup = d.groupSeq, true
				return errRollback
			}
		}
		if err := checkMember(ctx, tx, g, groupID, sender); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if err := tx.QueryRow(ctx, `
UPDATE groups SET last_seq = last_seq + 1 WHERE group_id = $1 RETURNING last_seq`, groupID).Scan(&seq); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if _, err := s.appendTx(ctx, tx, sender, clientMsgID, now, delivery{recipients, payload}); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if len(clientMsgID) > 0 {
			if err := rememberGroup(ctx, tx, groupID, sender, clientMsgID, kindApplication, digest, 0, seq, now); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return uint64(seq), dup, nil
}

// GroupState implements store.Store.
func (s *Store) GroupState(ctx context.Context, groupID []byte) (store.GroupState, error) {
	const op = "group state"
	if err := store.CheckGroupID(groupID); err != nil {
		return store.GroupState{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var gs store.GroupState
	err := s.read(ctx, op, func(ctx context.Context) error {
		var (
			epoch *int64
			last  int64
		)
		err := s.pool.QueryRow(ctx, `SELECT epoch, last_seq FROM groups WHERE group_id = $1`, groupID).Scan(&epoch, &last)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		gs = store.GroupState{LastSeq: uint64(last)}
		if epoch != nil {
			gs.Committed, gs.Epoch = true, uint64(*epoch)
		}
		return nil
	})
	return gs, err
}
