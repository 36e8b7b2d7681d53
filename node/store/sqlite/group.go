package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/quicproquo/quicproquo/node/store"
)

// Kinds of group_dedup rows.
const (
	kindCommit      = 1
	kindApplication = 2
)

// groupDedup is a remembered commit or application message.
type groupDedup struct {
	kind     int
	digest   []byte
	epoch    int64
	groupSeq int64
}

// lookupGroupDedup finds the remembered submission of (group, sender, id), if any.
func (s *Store) lookupGroupDedup(ctx context.Context, tx *sql.Tx, groupID, sender, clientMsgID []byte) (*groupDedup, error) {
	var d groupDedup
	err := s.queryRow(ctx, tx, groupDedupQuery, groupID, sender, clientMsgID).
		Scan(&d.kind, &d.digest, &d.epoch, &d.groupSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// matches reports store.ErrInvalid when a client message id is reused for
// another kind of submission or other bytes.
func (d *groupDedup) matches(kind int, digest [32]byte) error {
	if d.kind != kind || !bytes.Equal(d.digest, digest[:]) {
		return fmt.Errorf("client message id already used for a different submission: %w", store.ErrInvalid)
	}
	return nil
}

// The statements of SubmitCommit and FanOut.
var (
	groupDedupQuery = hot(`
SELECT kind, digest, epoch, group_seq FROM group_dedup
WHERE group_id = ? AND sender = ? AND client_msg_id = ?`)
	groupDedupInsert = hot(`
INSERT INTO group_dedup (group_id, sender, client_msg_id, kind, digest, epoch, group_seq, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	groupQuery   = hot(`SELECT epoch, view FROM groups WHERE group_id = ? AND view IS NOT NULL`)
	memberQuery  = hot(`SELECT 1 FROM group_members WHERE group_id = ? AND identity = ?`)
	advanceEpoch = hot(`
UPDATE groups SET epoch = ?, last_seq = last_seq + 1, view = ? WHERE group_id = ? RETURNING last_seq`)
	advanceGroupSeq = hot(`
UPDATE groups SET last_seq = last_seq + 1, view = ? WHERE group_id = ? RETURNING last_seq`)
	otherMembersQuery = hot(`SELECT identity FROM group_members WHERE group_id = ? AND identity != ?
AND identity NOT IN (SELECT device FROM revoked_devices)`)
	bumpGroupSeq = hot(`
UPDATE groups SET last_seq = last_seq + 1 WHERE group_id = ? AND view IS NOT NULL RETURNING last_seq`)
	rosterQuery  = hot(`SELECT identity, identity IN (SELECT device FROM revoked_devices) FROM group_members WHERE group_id = ?`)
	clearRoster  = hot(`DELETE FROM group_members WHERE group_id = ?`)
	insertRoster = hot(`
INSERT OR IGNORE INTO group_members (group_id, identity) SELECT ?, unhex(value) FROM json_each(?)`)
)

// The statements of a fan-out to several recipients.
var (
	insertSharedBody = hot(`
INSERT INTO bodies (sender, client_msg_id, payload, sequenced, group_seq, refs) VALUES (?, ?, ?, 1, ?, ?) RETURNING id`)
)

// lockedGroup is a group's row as a write transaction sees it.
type lockedGroup struct {
	epoch int64
	view  []byte
}

// loadGroup reads groupID's row for a write and reports store.ErrNotMember
// unless the group was created and its roster lists sender. (SQLite runs one
// write transaction at a time: the row stays as read until the commit.)
func (s *Store) loadGroup(ctx context.Context, tx *sql.Tx, groupID, sender []byte) (lockedGroup, error) {
	var g lockedGroup
	err := s.queryRow(ctx, tx, groupQuery, groupID).Scan(&g.epoch, &g.view)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return g, fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return g, err
	}
	if err := s.checkMember(ctx, tx, groupID, sender); err != nil {
		return g, err
	}
	return g, nil
}

// CreateGroup implements store.Store.
func (s *Store) CreateGroup(ctx context.Context, groupID, creator []byte, epoch uint64, view []byte, roster [][]byte) error {
	const op = "create group"
	if err := store.CheckCreateGroup(groupID, creator, epoch, view, roster); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO groups (group_id, epoch, last_seq, created_at, roster_known, view, creator) VALUES (?, ?, 0, ?, 1, ?, ?)
ON CONFLICT (group_id) DO NOTHING`, groupID, int64(epoch), s.now().UnixNano(), view, creator)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("sqlite: %s: group %x: %w", op, groupID, store.ErrGroupExists)
		}
		if err := s.setRoster(ctx, tx, groupID, roster); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	})
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
		return store.CommitResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	digest := sha256.Sum256(commit)
	var res store.CommitResult
	err = s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		if len(clientMsgID) > 0 {
			d, err := s.lookupGroupDedup(ctx, tx, groupID, sender, clientMsgID)
			if err != nil {
				return fmt.Errorf("sqlite: %s: %w", op, err)
			}
			if d != nil {
				if err := d.matches(kindCommit, digest); err != nil {
					return fmt.Errorf("sqlite: %s: %w", op, err)
				}
				res = store.CommitResult{Epoch: uint64(d.epoch), GroupSeq: uint64(d.groupSeq), Duplicate: true}
				return nil
			}
		}
		now := s.now().UnixNano()
		g, err := s.loadGroup(ctx, tx, groupID, sender)
		switch {
		case err != nil:
			return fmt.Errorf("sqlite: %s: %w", op, err)
		case g.epoch != int64(epoch):
			return fmt.Errorf("sqlite: %s: group %x: %w", op, groupID,
				&store.StaleEpochError{Epoch: epoch, Current: uint64(g.epoch)})
		}
		v, err := check(store.GroupView{Epoch: epoch, View: g.view})
		if err != nil {
			return err
		}
		if err := store.CheckVerdict(&v, welcome); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		var seq int64
		if err := s.queryRow(ctx, tx, advanceEpoch, int64(epoch)+1, v.View, groupID).Scan(&seq); err != nil {
			return fmt.Errorf("sqlite: %s: advance epoch: %w", op, err)
		}
		if err := s.setRoster(ctx, tx, groupID, v.Roster); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if err := s.fanOutTx(ctx, tx, v.Recipients, sender, clientMsgID, commit, now, seq); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if err := s.fanOutTx(ctx, tx, v.WelcomeRecipients, sender, clientMsgID, welcome, now, seq); err != nil {
			return fmt.Errorf("sqlite: %s: welcome: %w", op, err)
		}
		if len(clientMsgID) > 0 {
			if _, err := s.exec(ctx, tx, groupDedupInsert, groupID, sender, clientMsgID, kindCommit, digest[:], int64(epoch), seq, now); err != nil {
				return fmt.Errorf("sqlite: %s: remember client message id: %w", op, err)
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
		return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var res store.FanOutResult
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) (err error) {
		res, err = s.fanOutOne(ctx, tx, op, sender, store.FanOutItem{GroupID: groupID, ClientMsgID: clientMsgID, Payload: payload, Update: update}, nil)
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
func (s *Store) fanOutOne(ctx context.Context, tx *sql.Tx, op string, sender []byte, it store.FanOutItem, memo *rosterMemo) (store.FanOutResult, error) {
	groupID, clientMsgID, payload, update := it.GroupID, it.ClientMsgID, it.Payload, it.Update
	digest := sha256.Sum256(payload)
	if len(clientMsgID) > 0 {
		d, err := s.lookupGroupDedup(ctx, tx, groupID, sender, clientMsgID)
		if err != nil {
			return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if d != nil {
			if err := d.matches(kindApplication, digest); err != nil {
				return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
			}
			return store.FanOutResult{GroupSeq: uint64(d.groupSeq), Duplicate: true}, nil
		}
	}
	now := s.now().UnixNano()
	var seq int64
	var recipients [][]byte
	if update == nil {
		var err error
		if seq, recipients, err = s.advancePlain(ctx, tx, groupID, sender, memo); err != nil {
			return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
		}
	} else {
		memo.forget() // the view, and maybe the roster, change
		g, err := s.loadGroup(ctx, tx, groupID, sender)
		if err != nil {
			return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
		}
		view, err := update(store.GroupView{Epoch: uint64(g.epoch), View: g.view})
		if err != nil {
			return store.FanOutResult{}, err
		}
		if len(view) == 0 {
			return store.FanOutResult{}, fmt.Errorf("sqlite: %s: empty view: %w", op, store.ErrInvalid)
		}
		if err := s.queryRow(ctx, tx, advanceGroupSeq, view, groupID).Scan(&seq); err != nil {
			return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if recipients, err = s.otherMembers(ctx, tx, groupID, sender); err != nil {
			return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
		}
	}
	if err := s.fanOutTx(ctx, tx, recipients, sender, clientMsgID, payload, now, seq); err != nil {
		return store.FanOutResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if len(clientMsgID) > 0 {
		if _, err := s.exec(ctx, tx, groupDedupInsert, groupID, sender, clientMsgID, kindApplication, digest[:], 0, seq, now); err != nil {
			return store.FanOutResult{}, fmt.Errorf("sqlite: %s: remember client message id: %w", op, err)
		}
	}
	return store.FanOutResult{GroupSeq: uint64(seq), Recipients: recipients}, nil
}

// advancePlain numbers a message that changes nothing of the group's
// view (an application message) and returns its number and recipients:
// the group row's number advances without the view being read or written
// again, and one read of the roster checks that it lists sender and gives
// the others. (A refusal leaves the advance behind, for the caller to
// roll back.) With memo, the roster read for the same group and sender
// earlier in the transaction is taken again.
func (s *Store) advancePlain(ctx context.Context, tx *sql.Tx, groupID, sender []byte, memo *rosterMemo) (int64, [][]byte, error) {
	var seq int64
	err := s.queryRow(ctx, tx, bumpGroupSeq, groupID).Scan(&seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil, fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return 0, nil, err
	}
	if others, ok := memo.get(groupID, sender); ok {
		return seq, others, nil
	}
	rows, err := s.query(ctx, tx, rosterQuery, groupID)
	if err != nil {
		return 0, nil, fmt.Errorf("read roster: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	member := false
	for rows.Next() {
		var id []byte
		var revoked bool
		if err := rows.Scan(&id, &revoked); err != nil {
			return 0, nil, fmt.Errorf("read roster: %w", err)
		}
		switch {
		case bytes.Equal(id, sender):
			member = true
		case !revoked:
			out = append(out, id)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("read roster: %w", err)
	}
	if !member {
		return 0, nil, fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	}
	memo.put(groupID, sender, out)
	return seq, out, nil
}

// rosterMemo keeps, within one FanOutBatch's transaction, the last roster
// advancePlain read: the other members of a group, read for a sender it
// listed. Application messages change no roster, so the batch's next
// message of the same group and sender needs no read of it; any message
// that updates a view forgets it. A nil memo keeps nothing.
type rosterMemo struct {
	groupID, sender []byte
	others          [][]byte
}

func (m *rosterMemo) get(groupID, sender []byte) ([][]byte, bool) {
	if m == nil || m.groupID == nil || !bytes.Equal(m.groupID, groupID) || !bytes.Equal(m.sender, sender) {
		return nil, false
	}
	return m.others, true
}

func (m *rosterMemo) put(groupID, sender []byte, others [][]byte) {
	if m != nil {
		m.groupID, m.sender, m.others = groupID, sender, others
	}
}

func (m *rosterMemo) forget() {
	if m != nil {
		*m = rosterMemo{}
	}
}

// otherMembers lists the roster of groupID without sender and revoked
// devices (which stay in a roster until a commit removes their leaves).
func (s *Store) otherMembers(ctx context.Context, tx *sql.Tx, groupID, sender []byte) ([][]byte, error) {
	rows, err := s.query(ctx, tx, otherMembersQuery, groupID, sender)
	if err != nil {
		return nil, fmt.Errorf("read roster: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read roster: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// checkMember reports store.ErrNotMember when the roster of groupID does
// not list sender.
func (s *Store) checkMember(ctx context.Context, tx *sql.Tx, groupID, sender []byte) error {
	var one int
	err := s.queryRow(ctx, tx, memberQuery, groupID, sender).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("group %x: %x: %w", groupID, sender, store.ErrNotMember)
	case err != nil:
		return fmt.Errorf("check roster: %w", err)
	}
	return nil
}

// setRoster makes roster the group's roster, replacing the previous one.
func (s *Store) setRoster(ctx context.Context, tx *sql.Tx, groupID []byte, roster [][]byte) error {
	if _, err := s.exec(ctx, tx, clearRoster, groupID); err != nil {
		return fmt.Errorf("clear roster: %w", err)
	}
	if _, err := s.exec(ctx, tx, insertRoster, groupID, hexList(roster)); err != nil {
		return fmt.Errorf("store roster: %w", err)
	}
	return nil
}

// hexList encodes keys as a JSON array of hex strings, for json_each.
func hexList(keys [][]byte) string {
	list := make([]byte, 0, 2+len(keys)*(2*store.IdentityKeySize+3))
	list = append(list, '[')
	for i, r := range keys {
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, '"')
		list = hex.AppendEncode(list, r)
		list = append(list, '"')
	}
	return string(append(list, ']'))
}

// fanOutTx appends payload, sequenced as number groupSeq of its group, to
// every recipient's queue inside tx. The recipients' entries share one
// stored body and are written by one statement; their numbers and depths
// come from the writer's memory of the queues, whose rows the fan-out
// leaves as they are (see queuecache.go): one B-tree write per recipient.
func (s *Store) fanOutTx(ctx context.Context, tx *sql.Tx, recipients [][]byte, sender, clientMsgID, payload []byte, now, groupSeq int64) error {
	switch len(recipients) {
	case 0:
		return nil
	case 1:
		_, err := s.appendTx(ctx, tx, recipients[0], sender, clientMsgID, payload, now, groupSeq)
		return err
	}
	states, err := s.qc.states(ctx, tx, s, recipients)
	if err != nil {
		return err
	}
	limit := int64(s.limits.MaxQueueDepth)
	for i, st := range states {
		if st.depth >= limit {
			return fmt.Errorf("queue of %x holds %d messages (limit %d): %w",
				recipients[i], st.depth, s.limits.MaxQueueDepth, store.ErrLimit)
		}
	}
	var body int64
	if err := s.queryRow(ctx, tx, insertSharedBody, nonNil(sender), nonNil(clientMsgID), nonNil(payload), groupSeq, len(recipients)).Scan(&body); err != nil {
		return fmt.Errorf("store body: %w", err)
	}
	entries := make([]byte, 0, len(states)*16)
	entries = append(entries, '{')
	for i, st := range states {
		if i > 0 {
			entries = append(entries, ',')
		}
		entries = append(entries, '"')
		entries = strconv.AppendInt(entries, st.qid, 10)
		entries = append(entries, '"', ':')
		entries = strconv.AppendInt(entries, st.last+1, 10)
	}
	entries = append(entries, '}')
	res, err := s.exec(ctx, tx, insertCachedEntries, body, now, string(entries))
	if err != nil {
		return fmt.Errorf("store messages: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(recipients)) {
		return fmt.Errorf("stored %d messages for %d recipients: %v", n, len(recipients), err)
	}
	for _, st := range states {
		s.qc.touch(st)
		st.last++
		st.depth++
		st.dirty = true
	}
	return nil
}

// GroupState implements store.Store.
func (s *Store) GroupState(ctx context.Context, groupID, member []byte) (store.GroupState, error) {
	const op = "group state"
	if err := errors.Join(store.CheckGroupID(groupID), store.CheckKey("member", member)); err != nil {
		return store.GroupState{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var gs store.GroupState
	err := s.read(ctx, op, func(tx *sql.Tx) error {
		var epoch, last int64
		err := tx.QueryRowContext(ctx, `
SELECT g.epoch, g.last_seq, (SELECT count(*) FROM group_members c WHERE c.group_id = g.group_id)
FROM groups g JOIN group_members m ON m.group_id = g.group_id AND m.identity = ?
WHERE g.group_id = ? AND g.view IS NOT NULL`, member, groupID).Scan(&epoch, &last, &gs.Members)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: group %x: %x: %w", op, groupID, member, store.ErrNotMember)
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		gs.Epoch, gs.LastSeq = uint64(epoch), uint64(last)
		return nil
	})
	return gs, err
}
