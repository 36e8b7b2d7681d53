package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file recovers a group that cannot pass an epoch. The node checks a
// commit's signature and its validity on the public tree, but it cannot
// read the encrypted path secrets or the confirmation tag: a member can
// have the node accept, as the epoch's only commit, one whose secrets are
// garbage. Every honest member then fails to apply it (receive.go) and the
// group can never move on. Recovery moves the honest members, without any
// command, to a successor group:
//
//  1. Each honest member, on the commit it cannot apply, records a
//     recovery (store.Recovery) in the transaction that consumes the
//     commit: the offender (the node-authenticated sender, whose leaf
//     signed the commit), the roster (every identity of the last shared
//     epoch but the offender's) and the leader (the roster's member with
//     the lowest leaf). Every honest member computes the same from the
//     same epoch. An EventRecovery names the offender and the leader. From
//     then on the group's outgoing messages wait in the outbox.
//  2. The leader creates the successor: a new group id in the same suite,
//     registered at the node, and one commit adding every other member of
//     the roster. The Welcome carries the group's name and
//     ExtensionSuccessor (old group id, last shared epoch, offender),
//     encrypted to the joiners like the name; the node sees a new group.
//  3. A member joins a Welcome carrying ExtensionSuccessor only as the
//     recovery it recorded itself: same old group, epoch and offender;
//     sent (as the node authenticated it) by the leader it computed; with
//     exactly the roster it computed, itself included, in the old group's
//     suite. Such a Welcome skips the consent inbox (the user was already
//     in a group with all of them); any other is refused (EventRefused),
//     whoever sends it, so "recovery" can neither pull a member into a
//     group of someone's choosing nor drop an honest member.
//  4. On joining (the leader: once the node accepted its commit), in one
//     transaction, the successor takes the group's name and its history,
//     the old group is marked left, the messages waiting in the outbox
//     are encrypted again in the successor and go out there, and an
//     EventRecovered names the old group, the successor and the offender.
//
// While a recovery is open, a member that falls behind asks the other
// members for a GroupInfo to rejoin (rejoin.go), never the offender: only
// the offender could answer past the commit it broke. If the others did
// apply the commit (it was this member's own failure, or the offender
// broke it for this member alone), their answer rejoins it and closes the
// recovery, and its waiting messages go out in the group.
//
// What is not built: if the leader is offline, the others wait for it (its
// queue holds the commit; it recovers when it reconnects), and their
// messages wait with them; there is no hand-over to the next member after
// a timeout, because a Welcome from anyone but the computed leader would
// have to be trusted. The leader stores the successor and its commit before
// submitting it, so that a lost reply is resolved on the next connection
// like any pending commit, and the switch then finishes. A hostile leader
// (not the offender) can stall the recovery, but not change its roster.

// ExtensionSuccessor is the private-use GroupInfo extension of a recovery
// Welcome: the old group's id (16 bytes), the last shared epoch (uint64,
// big endian) and the offender's identity key (32 bytes).
const ExtensionSuccessor mls.ExtensionType = 0xff01

const successorSize = store.GroupIDSize + 8 + 32

// ErrRecoveryRefused: a Welcome claims to recover a group but is not the
// recovery this member computed (wrong leader, roster, group or epoch).
var ErrRecoveryRefused = errors.New("recovery Welcome refused")

// successorLink is what ExtensionSuccessor says.
type successorLink struct {
	old      []byte
	epoch    uint64
	offender []byte
}

func (l successorLink) encode() []byte {
	b := append(bytes.Clone(l.old), make([]byte, 8)...)
	binary.BigEndian.PutUint64(b[store.GroupIDSize:], l.epoch)
	return append(b, l.offender...)
}

func decodeSuccessorLink(b []byte) (successorLink, error) {
	if len(b) != successorSize {
		return successorLink{}, fmt.Errorf("%w: successor extension of %d bytes, want %d", ErrRecoveryRefused, len(b), successorSize)
	}
	return successorLink{
		old:      bytes.Clone(b[:store.GroupIDSize]),
		epoch:    binary.BigEndian.Uint64(b[store.GroupIDSize:]),
		offender: bytes.Clone(b[store.GroupIDSize+8:]),
	}, nil
}

// recoveryPlan computes, from the last shared epoch of g, the roster
// without offender and its leader (the lowest leaf of the roster).
func recoveryPlan(g *mls.Group, offender []byte) (roster [][]byte, leader []byte) {
	for _, m := range g.Members() { // in leaf order
		// Devices: the offender is the device that signed the commit.
		if len(m.SignatureKey) != ed25519.PublicKeySize || bytes.Equal(m.SignatureKey, offender) {
			continue
		}
		if !slices.ContainsFunc(roster, func(r []byte) bool { return bytes.Equal(r, m.SignatureKey) }) {
			roster = append(roster, bytes.Clone(m.SignatureKey))
		}
	}
	if len(roster) > 0 {
		leader = roster[0]
	}
	return roster, leader
}

// startRecovery records the recovery of sg, stuck at g's epoch by
// offender's commit (why), in the transaction that consumes the commit,
// and schedules the successor's creation if this member leads.
func (b *Backend) startRecovery(tx *store.Tx, env nodeclient.Envelope, sg store.Group, g *mls.Group, why error) error {
	offender := env.Sender
	if err := rejectedEvent(tx, env, why); err != nil {
		return err
	}
	if _, err := tx.Recovery(sg.ID); err == nil {
		return nil // already under way
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	roster, leader := recoveryPlan(g, offender)
	self, ok := g.Member(g.OwnLeaf())
	if !ok || len(leader) == 0 || !sg.LeftAt.IsZero() {
		return nil
	}
	rec := store.Recovery{GroupID: sg.ID, Epoch: g.Epoch(), Offender: offender, Leader: leader, Roster: roster}
	if err := tx.AddRecovery(rec); err != nil {
		return err
	}
	detail := fmt.Sprintf("the commit of %s for epoch %d cannot be applied (%v); the group moves to a successor of the %d other members, created by %s",
		FormatKey(offender), g.Epoch(), why, len(roster), FormatKey(leader))
	if _, err := tx.AppendEvent(store.Event{Kind: store.EventRecovery, GroupID: sg.ID, By: offender, Member: leader, Epoch: g.Epoch(), Detail: detail}); err != nil {
		return err
	}
	b.log.Warn("group recovery", "group", FormatKey(sg.ID), "offender", FormatKey(offender), "leader", FormatKey(leader), "epoch", g.Epoch())
	if bytes.Equal(leader, self.SignatureKey) {
		b.schedule(groupJob{group: sg.ID, kind: jobRecover})
	}
	return nil
}

// resumeRecoveries schedules, on connecting, the successor's creation of
// every open recovery this member leads.
func (b *Backend) resumeRecoveries(ctx context.Context, self []byte) error {
	var recs []store.Recovery
	if err := b.view(ctx, func(tx *store.Tx) (err error) { recs, err = tx.OpenRecoveries(); return }); err != nil {
		return err
	}
	for _, r := range recs {
		if bytes.Equal(r.Leader, self) {
			b.schedule(groupJob{group: r.GroupID, kind: jobRecover})
		}
	}
	return nil
}

// createSuccessor is the leader's part: a successor group with every
// other member of the roster, committed at the node, then the switch. The
// successor and its commit are stored before the commit is submitted (the
// successor hidden, as left, until the switch), so that a commit whose
// reply was lost gets its verdict on the next connection like any other
// (resolvePending) and this job, run again then, finishes the switch.
func (b *Backend) createSuccessor(ctx context.Context, oldID []byte) error {
	id, err := b.identity(ctx)
	if err != nil {
		return err
	}
	self := id.PublicKey()
	b.gmu.Lock()
	defer b.gmu.Unlock()
	c := b.client()
	if c == nil {
		return ErrNotConnected // resumed on the next connection
	}
	var rec store.Recovery
	var old store.Group
	var og, g *mls.Group
	err = b.view(ctx, func(tx *store.Tx) error {
		if rec, err = tx.Recovery(oldID); err != nil {
			return err
		}
		if old, og, err = loadGroup(tx, oldID); err != nil {
			return err
		}
		if rec.Successor != nil {
			_, g, err = loadGroup(tx, rec.Successor)
		}
		return err
	})
	if err != nil || rec.Done || !bytes.Equal(rec.Leader, self) {
		return err
	}
	others := slices.DeleteFunc(slices.Clone(rec.Roster), func(r []byte) bool { return bytes.Equal(r, self) })
	switch {
	case g != nil && g.HasPendingCommit():
		return nil // its verdict comes with the next connection's pending commits
	case g != nil && (g.Epoch() > 0 || len(others) == 0):
		return b.update(ctx, func(tx *store.Tx) error { return b.switchToSuccessor(tx, rec, self, g) })
	}
	// None yet, or the node refused the last one's commit: a new one.
	newID := make([]byte, store.GroupIDSize)
	if _, err := rand.Read(newID); err != nil {
		return err
	}
	s, err := signer(id)
	if err != nil {
		return err
	}
	g, err = mls.CreateGroup(og.CipherSuite(), newID, s, &mls.CreateOptions{Config: groupConfig, Policy: groupPolicy})
	clear(s.SignaturePriv)
	if err != nil {
		return fmt.Errorf("create the successor: %w", err)
	}
	if err := registerGroup(ctx, c, g); err != nil {
		return err
	}
	if len(others) == 0 {
		return b.update(ctx, func(tx *store.Tx) error { return b.switchToSuccessor(tx, rec, self, g) })
	}
	kps, to, err := b.fetchDeviceKeyPackages(ctx, c, g, og, others)
	if err != nil {
		return err
	}
	link := successorLink{old: oldID, epoch: rec.Epoch, offender: rec.Offender}
	commit, err := g.AddMembers(kps, &mls.CommitOptions{WelcomeExtensions: []mls.Extension{
		{Type: ExtensionGroupName, Data: []byte(old.Name)},
		{Type: ExtensionSuccessor, Data: link.encode()},
	}})
	if err != nil {
		return fmt.Errorf("add the roster to the successor: %w", err)
	}
	cid := make([]byte, 18)
	copy(cid, "s:")
	if _, err := rand.Read(cid[2:]); err != nil {
		return err
	}
	item := store.OutboxItem{Kind: store.OutboxCommit, GroupID: newID, ClientMsgID: cid, Payload: commit.Message,
		Welcome: commit.Welcome, WelcomeRecipients: to}
	err = b.update(ctx, func(tx *store.Tx) error {
		sg := store.Group{ID: newID, Name: old.Name, LeftAt: tx.Now(), JoinReported: true, DisappearAfter: old.DisappearAfter}
		if err := saveGroup(tx, &sg, g); err != nil {
			return err
		}
		if item, err = tx.AddOutbox(item); err != nil {
			return err
		}
		return tx.SetRecoveryProgress(oldID, newID, false)
	})
	if err != nil {
		return err
	}
	if b.beforeSubmit != nil {
		b.beforeSubmit()
	}
	if _, err := b.submitLocked(ctx, c, item, false); err != nil {
		return fmt.Errorf("submit the successor's commit: %w", err)
	}
	b.log.Info("successor created", "group", FormatKey(oldID), "successor", FormatKey(newID), "members", len(to)+1)
	return b.update(ctx, func(tx *store.Tx) error {
		_, g, err := loadGroup(tx, newID)
		if err != nil {
			return err
		}
		return b.switchToSuccessor(tx, rec, self, g)
	})
}

// joinSuccessor joins the successor g (from a Welcome sent by sender,
// carrying link) if it is exactly the recovery this member computed.
func (b *Backend) joinSuccessor(tx *store.Tx, g *mls.Group, kp store.KeyPackageSecret, link successorLink, sender []byte) ([]byte, error) {
	refuse := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %w: %s", ErrRejectEnvelope, ErrRecoveryRefused, fmt.Sprintf(format, args...))
	}
	rec, err := tx.Recovery(link.old)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse("from %s: no recovery of group %x is under way here", FormatKey(sender), link.old)
	case err != nil:
		return nil, err
	case rec.Done:
		return refuse("from %s: group %x is already recovered in %x", FormatKey(sender), link.old, rec.Successor)
	case rec.Epoch != link.epoch || !bytes.Equal(rec.Offender, link.offender):
		return refuse("from %s: it recovers group %x from epoch %d without %s, here the recovery is from epoch %d without %s",
			FormatKey(sender), link.old, link.epoch, FormatKey(link.offender), rec.Epoch, FormatKey(rec.Offender))
	case !bytes.Equal(sender, rec.Leader):
		return refuse("from %s: the recovery of group %x is led by %s", FormatKey(sender), link.old, FormatKey(rec.Leader))
	}
	_, og, err := loadGroup(tx, link.old)
	if err != nil {
		return nil, err
	}
	if g.CipherSuite() != og.CipherSuite() {
		return refuse("from %s: successor in suite %s, group %x is in %s", FormatKey(sender), g.CipherSuite().Name(), link.old, og.CipherSuite().Name())
	}
	var got [][]byte
	for _, m := range g.Members() {
		got = append(got, m.SignatureKey)
	}
	if !sameKeySet(got, rec.Roster) {
		return refuse("from %s: the successor of group %x has %d members, not exactly the %d members of epoch %d without %s",
			FormatKey(sender), link.old, len(got), len(rec.Roster), rec.Epoch, FormatKey(rec.Offender))
	}
	if !kp.LastResort {
		if err := tx.DeleteKeyPackage(kp.Ref); err != nil {
			return nil, err
		}
	}
	self, _ := g.Member(g.OwnLeaf())
	if err := b.switchToSuccessor(tx, rec, self.SignatureKey, g); err != nil {
		return nil, err
	}
	return g.GroupID(), nil
}

// switchToSuccessor stores the successor g of rec's group, with the old
// group's name and history, marks the old group left, moves its waiting
// messages to the successor and closes the recovery, in tx.
func (b *Backend) switchToSuccessor(tx *store.Tx, rec store.Recovery, self []byte, g *mls.Group) error {
	old, _, err := loadGroup(tx, rec.GroupID)
	if err != nil {
		return err
	}
	old.LeftAt = tx.Now()
	if err := tx.PutGroup(old); err != nil {
		return err
	}
	sg := store.Group{ID: g.GroupID(), Name: old.Name, JoinReported: true, DisappearAfter: old.DisappearAfter}
	if err := saveGroup(tx, &sg, g); err != nil {
		return err
	}
	if err := tx.MoveHistory(old.ID, sg.ID); err != nil {
		return err
	}
	items, err := tx.GroupOutbox(old.ID)
	if err != nil {
		return err
	}
	rcpt := otherMembers(g, self)
	for _, it := range items {
		if it.MessageSeq == 0 {
			// A handshake message of the old group (a leave proposal).
			if err := tx.SetOutboxState(it.ID, store.OutboxDropped, "the group moved to its successor"); err != nil {
				return err
			}
			continue
		}
		m, err := tx.Message(sg.ID, it.MessageSeq)
		if err != nil {
			return err
		}
		pt, err := appendContent(resent(m), g.EpochAuthenticator())
		if err != nil {
			return err
		}
		ct, err := g.Protect(pt, nil)
		clear(pt)
		if err != nil {
			return fmt.Errorf("encrypt in the successor: %w", err)
		}
		it.GroupID, it.Payload, it.Recipients, it.Epoch = sg.ID, ct, rcpt, g.Epoch()
		if err := tx.RetargetOutbox(it, messageID(ct)); err != nil {
			return err
		}
		if len(rcpt) == 0 {
			if err := tx.SetOutboxState(it.ID, store.OutboxSent, ""); err != nil {
				return err
			}
		}
	}
	if err := saveGroup(tx, &sg, g); err != nil { // the sender ratchet moved
		return err
	}
	if err := tx.SetRecoveryProgress(rec.GroupID, sg.ID, true); err != nil {
		return err
	}
	detail := fmt.Sprintf("group %q (%x) continues in %x without %s, created by %s", old.Name, old.ID, sg.ID, FormatKey(rec.Offender), FormatKey(rec.Leader))
	if _, err := tx.AppendEvent(store.Event{Kind: store.EventRecovered, GroupID: sg.ID, State: FormatKey(old.ID), By: rec.Offender, Member: rec.Leader, Epoch: g.Epoch(), Detail: detail}); err != nil {
		return err
	}
	b.log.Info("group recovered", "group", FormatKey(old.ID), "successor", FormatKey(sg.ID), "offender", FormatKey(rec.Offender))
	return nil
}

// sameKeySet reports whether a and b hold the same keys, each once.
func sameKeySet(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i, k := range a {
		if slices.ContainsFunc(a[:i], func(x []byte) bool { return bytes.Equal(x, k) }) ||
			!slices.ContainsFunc(b, func(x []byte) bool { return bytes.Equal(x, k) }) {
			return false
		}
	}
	return true
}

// isSuccessorWelcome reports whether welcome, opened with this user's
// KeyPackage, carries ExtensionSuccessor. It changes nothing.
func isSuccessorWelcome(tx *store.Tx, welcome []byte) bool {
	g, _, err := openWelcome(tx, welcome)
	if err != nil {
		return false
	}
	_, ok := mls.FindExtension(g.WelcomeExtensions(), ExtensionSuccessor)
	return ok
}

func toKeys(ks [][]byte) []ed25519.PublicKey {
	out := make([]ed25519.PublicKey, len(ks))
	for i, k := range ks {
		out[i] = k
	}
	return out
}

// historyOf is the group whose history keeps an application message of sg
// (g) from sender: sg itself; for a group the user left while still in its
// tree, none, except that a
// group recovered in a successor keeps the late messages of its honest
// members (sent before they learnt of the recovery) in the successor's
// history, where its own history went.
func (b *Backend) historyOf(tx *store.Tx, sg store.Group, g *mls.Group, sender []byte) ([]byte, error) {
	if sg.LeftAt.IsZero() || !g.Active() {
		return sg.ID, nil
	}
	rec, err := tx.Recovery(sg.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case !rec.Done || bytes.Equal(sender, rec.Offender):
		return nil, nil
	}
	return rec.Successor, nil
}

// rejoinAskable drops, from the members a rejoin request of group id
// goes to, the offender of its recovery: only it could answer with a
// GroupInfo past the commit it broke, and the answer is sealed to a key in
// the request, so it gets no request. Honest members answer from the last
// shared epoch, which does not help; but when the failure was this
// member's own (the others applied the commit), their answer rejoins it,
// and closeRecovery ends the recovery.
func rejoinAskable(tx *store.Tx, id []byte, members [][]byte) ([][]byte, error) {
	rec, err := tx.Recovery(id)
	if errors.Is(err, store.ErrNotFound) {
		return members, nil
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(members, func(m []byte) bool { return bytes.Equal(m, rec.Offender) }), nil
}

// closeRecovery ends an open recovery of a group this member rejoined
// past the commit it could not apply (the commit was not garbage: the
// others applied it), so that its waiting messages go out in the group.
func closeRecovery(tx *store.Tx, id []byte) error {
	rec, err := tx.Recovery(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Done) {
		return nil
	}
	if err != nil {
		return err
	}
	return tx.SetRecoveryProgress(id, nil, true)
}
