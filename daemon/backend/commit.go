package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/quicproquo/quicproquo/internal/panicstack"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file commits (RFC 9420 section 12.4) the way the node orders them:
//
//  1. build the commit as pending, and store the pending group state with
//     an outbox item (commit, Welcome, recipients, client message id) in
//     one transaction;
//  2. submit it to the node;
//  3. accepted: merge the pending commit and store the new epoch; stale
//     (another commit won the epoch): discard it, let the receiver apply
//     the winning commit from the queue, and build the intent again on the
//     new epoch (fetching fresh KeyPackages);
//  4. no answer (connection lost): the pending state stays; on the next
//     connection the same item is submitted again with the same client
//     message id, so the node answers as the first time, before anything
//     of the group is received;
//  5. stale on that resubmission (nobody waits for it any more): the
//     commit is discarded as in 3, the item kept in state OutboxRerun, and
//     the intent stored with it (intent.go) is run again as a group job
//     once the winning commit is applied, through the same code as the API
//     call; the item is closed in the transaction storing the new pending
//     commit (or when there is nothing left to do, or it failed).
//
// A commit the node has not accepted is never merged. gmu is held from
// building to the verdict, so that the receiver never processes a message
// of a group whose commit is in flight.

// maxCommitAttempts bounds how often one intent is rebuilt after losing
// its epoch.
const maxCommitAttempts = 12

// staleWait bounds the wait for the winning commit to arrive.
const staleWait = 30 * time.Second

// commitIntent builds one commit on g. It returns the commit (nil when
// there is nothing to do) and the identities the Welcome is for.
type commitIntent func(ctx context.Context, c *nodeclient.Client, g *mls.Group, self []byte) (*mls.CommitResult, [][]byte, error)

// ErrStaleEpoch tells that a commit kept losing its epoch to others.
var errLostEpoch = errors.New("the commit kept losing its epoch to other members' commits")

// runCommit carries an intent through to an accepted commit and returns
// the group afterwards. plan is the intent's stored form (intent.go), kept
// with the pending commit; rerunOf, when not 0, is the outbox item of a
// stale commit whose intent this runs again (closed with the first commit
// stored).
func (b *Backend) runCommit(ctx context.Context, group string, plan []byte, rerunOf int64, intent commitIntent) (GroupInfo, error) {
	id, err := b.identity(ctx)
	if err != nil {
		return GroupInfo{}, err
	}
	ref, err := b.ResolveGroup(ctx, group)
	if err != nil {
		return GroupInfo{}, err
	}
	for attempt := 0; attempt < maxCommitAttempts; attempt++ {
		stale, err := b.commitOnce(ctx, ref.ID, id, plan, rerunOf, intent)
		if err != nil {
			return GroupInfo{}, err
		}
		if stale == nil {
			return b.groupInfoByID(ctx, ref.ID)
		}
		b.log.Info("commit lost its epoch; retrying", "group", FormatKey(ref.ID), "epoch", stale.Epoch, "current", stale.Current)
		if err := b.waitEpoch(ctx, ref.ID, max(stale.Current, stale.Epoch+1)); err != nil {
			return GroupInfo{}, err
		}
	}
	return GroupInfo{}, fmt.Errorf("backend: group %x: %w", ref.ID, errLostEpoch)
}

func (b *Backend) groupInfoByID(ctx context.Context, id []byte) (GroupInfo, error) {
	var gi GroupInfo
	err := b.view(ctx, func(tx *store.Tx) error {
		g, err := tx.Group(id)
		if err != nil {
			return err
		}
		gi, err = groupInfo(tx, g)
		return err
	})
	return gi, err
}

// waitEpoch waits until the group reaches epoch target (or the user is no
// longer in it).
func (b *Backend) waitEpoch(ctx context.Context, groupID []byte, target uint64) error {
	deadline := time.NewTimer(staleWait)
	defer deadline.Stop()
	for {
		changed := b.Changed()
		var g store.Group
		if err := b.view(ctx, func(tx *store.Tx) (err error) { g, err = tx.Group(groupID); return }); err != nil {
			return err
		}
		if g.Epoch >= target || !g.LeftAt.IsZero() {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("%w: group %x: the commit of epoch %d did not arrive within %v", ErrNotConnected, groupID, target-1, staleWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// commitOnce builds, stores and submits one commit. A nil stale error and
// nil error mean it was accepted (or there was nothing to commit).
func (b *Backend) commitOnce(ctx context.Context, groupID []byte, id store.Identity, plan []byte, rerunOf int64, intent commitIntent) (*nodeclient.StaleEpochError, error) {
	b.gmu.Lock()
	defer b.gmu.Unlock()
	c := b.client()
	if c == nil {
		ci := b.Connection()
		return nil, fmt.Errorf("%w: %s (%s): a commit needs the node's verdict", ErrNotConnected, ci.Address, ci.State)
	}
	if err := b.resolvePendingLocked(ctx, c, false); err != nil {
		return nil, err
	}
	var sg store.Group
	var g *mls.Group
	if err := b.view(ctx, func(tx *store.Tx) (err error) { sg, g, err = loadGroup(tx, groupID); return }); err != nil {
		return nil, err
	}
	if !sg.LeftAt.IsZero() || !g.Active() {
		return nil, fmt.Errorf("%w: %s", ErrNotMember, sg.Name)
	}
	if g.Epoch() == 0 {
		// Never committed: make sure the node knows the group.
		if err := registerGroup(ctx, c, g); err != nil {
			return nil, err
		}
	}
	self := id.PublicKey()
	res, welcomeTo, err := intent(ctx, c, g, self)
	if err != nil || res == nil {
		return nil, err
	}
	cid := make([]byte, 18)
	copy(cid, "c:")
	if _, err := rand.Read(cid[2:]); err != nil {
		return nil, err
	}
	item := store.OutboxItem{Kind: store.OutboxCommit, GroupID: groupID, ClientMsgID: cid, Payload: res.Message,
		Recipients: otherMembers(g, self), Epoch: g.Epoch(), Welcome: res.Welcome, WelcomeRecipients: welcomeTo, Intent: plan}
	err = b.update(ctx, func(tx *store.Tx) error {
		if err := saveGroup(tx, &sg, g); err != nil {
			return err
		}
		if item, err = tx.AddOutbox(item); err != nil {
			return err
		}
		return closeRerun(tx, rerunOf, fmt.Sprintf("run again as commit %d", item.ID))
	})
	if err != nil {
		return nil, fmt.Errorf("backend: store pending commit: %w", err)
	}
	if b.beforeSubmit != nil {
		b.beforeSubmit()
	}
	return b.submitLocked(ctx, c, item, false)
}

// submitLocked submits a stored pending commit and applies the verdict.
// rerun: a stale commit with an intent is left in state OutboxRerun (its
// intent waits to be run again) rather than dropped.
func (b *Backend) submitLocked(ctx context.Context, c *nodeclient.Client, item store.OutboxItem, rerun bool) (*nodeclient.StaleEpochError, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := c.SubmitCommit(sctx, nodeclient.CommitRequest{ClientMsgID: item.ClientMsgID, Message: item.Payload, Welcome: item.Welcome})
	cancel()
	var stale *nodeclient.StaleEpochError
	var ne *nodeclient.NodeError
	switch {
	case err == nil:
		return nil, b.finishCommit(ctx, item, true, store.OutboxSent, "")
	case errors.As(err, &stale):
		to := store.OutboxDropped
		if rerun && len(item.Intent) > 0 {
			to = store.OutboxRerun
		}
		return stale, b.finishCommit(ctx, item, false, to, err.Error())
	case errors.Is(err, nodeclient.ErrInternal), errors.Is(err, nodeclient.ErrRateLimited):
		// Not a verdict on the commit: it stays pending and is resubmitted
		// with the same client message id, which the node deduplicates.
		return nil, fmt.Errorf("%w: the node could not take the commit now, it stays pending: %w", ErrNotConnected, err)
	case errors.As(err, &ne):
		if ferr := b.finishCommit(ctx, item, false, store.OutboxDropped, err.Error()); ferr != nil {
			return nil, ferr
		}
		return nil, fmt.Errorf("backend: the node refused the commit: %w", err)
	}
	return nil, fmt.Errorf("%w: the commit waits for the node's verdict: %w", ErrNotConnected, err)
}

// finishCommit merges (accepted) or discards the pending commit of item's
// group and closes item (a discarded one in state closeTo), in one
// transaction.
func (b *Backend) finishCommit(ctx context.Context, item store.OutboxItem, accepted bool, closeTo store.OutboxState, why string) error {
	err := b.update(ctx, func(tx *store.Tx) error {
		sg, g, err := loadGroup(tx, item.GroupID)
		if err != nil {
			return err
		}
		pending := g.PendingCommit()
		if pending == nil || !bytes.Equal(pending.Message, item.Payload) {
			// Not this commit's state any more (should not happen):
			// close the item only.
			b.log.Warn("commit verdict for a group without that pending commit", "group", FormatKey(item.GroupID), "accepted", accepted)
			return tx.SetOutboxState(item.ID, store.OutboxDropped, "no pending commit")
		}
		if !accepted {
			if err := g.DiscardPendingCommit(); err != nil {
				return err
			}
			if err := saveGroup(tx, &sg, g); err != nil {
				return err
			}
			return tx.SetOutboxState(item.ID, closeTo, why)
		}
		self := g.OwnLeaf()
		me, _ := g.Member(self)
		res, err := g.MergePendingCommit()
		if err != nil {
			return err
		}
		b.signers.forget(sg.ID) // of the epoch before
		var added []mls.Member
		for _, l := range res.Added {
			if m, ok := g.Member(l); ok {
				added = append(added, m)
			}
		}
		if err := membershipEvents(tx, sg.ID, g, added, res.Removed, me, res.Epoch); err != nil {
			return err
		}
		if err := saveGroup(tx, &sg, g); err != nil {
			return err
		}
		return tx.SetOutboxState(item.ID, store.OutboxSent, "")
	})
	if err != nil {
		return fmt.Errorf("backend: apply commit verdict: %w", err)
	}
	return nil
}

// resolvePendingLocked submits again every commit whose verdict is not
// known (its reply was lost), with its original client message id. A stale
// one is discarded, and when it carries an intent it is kept in state
// OutboxRerun, in the same transaction, and a group job (jobRerunIntent) is
// scheduled to run the intent again once the group reaches the winning
// epoch: gmu is held here, and the receiver must apply the winning commit
// first. all also schedules every item already waiting in state OutboxRerun
// (the daemon stopped before its job ran): the connection loop asks for it.
func (b *Backend) resolvePendingLocked(ctx context.Context, c *nodeclient.Client, all bool) error {
	var items []store.OutboxItem
	if err := b.view(ctx, func(tx *store.Tx) (err error) { items, err = tx.PendingCommits(); return }); err != nil {
		return err
	}
	var rerun []store.OutboxItem
	for _, it := range items {
		stale, err := b.submitLocked(ctx, c, it, true)
		if err != nil {
			if errors.Is(err, ErrNotConnected) {
				return err
			}
			b.log.Warn("pending commit", "group", FormatKey(it.GroupID), "err", err)
			continue
		}
		if stale == nil {
			continue
		}
		if len(it.Intent) == 0 {
			b.log.Warn("pending commit lost its epoch; discarded", "group", FormatKey(it.GroupID), "epoch", stale.Epoch, "current", stale.Current)
			continue
		}
		b.log.Warn("pending commit lost its epoch; its intent runs again on the new epoch", "group", FormatKey(it.GroupID), "intent", intentKindOf(it.Intent), "epoch", stale.Epoch, "current", stale.Current)
		rerun = append(rerun, it)
	}
	if all {
		rerun = rerun[:0]
		if err := b.view(ctx, func(tx *store.Tx) (err error) { rerun, err = tx.RerunCommits(); return }); err != nil {
			return err
		}
	}
	for _, it := range rerun {
		b.schedule(groupJob{group: it.GroupID, kind: jobRerunIntent, data: it.Intent, item: it.ID, epoch: it.Epoch + 1})
	}
	return nil
}

// resolvePending is resolvePendingLocked for the connection loop.
func (b *Backend) resolvePending(ctx context.Context, c *nodeclient.Client) error {
	b.gmu.Lock()
	defer b.gmu.Unlock()
	return b.resolvePendingLocked(ctx, c, true)
}

// Invite adds peers to a group in one commit, with a Welcome (carrying the
// ratchet tree) for them. Peers already in the group are skipped.
func (b *Backend) Invite(ctx context.Context, group string, peers []ed25519.PublicKey) (GroupInfo, []ed25519.PublicKey, error) {
	if len(peers) == 0 {
		return GroupInfo{}, nil, fmt.Errorf("%w: no peer keys", ErrInvalidArgument)
	}
	if err := b.refuseDirectInvite(ctx, group); err != nil {
		return GroupInfo{}, nil, err
	}
	seen := map[string]bool{}
	for _, p := range peers {
		if len(p) != ed25519.PublicKeySize {
			return GroupInfo{}, nil, fmt.Errorf("%w: peer key of %d bytes", ErrInvalidArgument, len(p))
		}
		if seen[string(p)] {
			return GroupInfo{}, nil, fmt.Errorf("%w: peer %s given twice", ErrInvalidArgument, FormatKey(p))
		}
		seen[string(p)] = true
	}
	return b.runPlan(ctx, group, commitPlan{kind: intentInvite, peers: peers}, 0)
}

// Remove removes a member from a group.
func (b *Backend) Remove(ctx context.Context, group string, peer ed25519.PublicKey) (GroupInfo, error) {
	if len(peer) != ed25519.PublicKeySize {
		return GroupInfo{}, fmt.Errorf("%w: peer key of %d bytes", ErrInvalidArgument, len(peer))
	}
	gi, _, err := b.runPlan(ctx, group, commitPlan{kind: intentRemove, peers: []ed25519.PublicKey{peer}}, 0)
	return gi, err
}

// Update rotates the user's own keys (a commit with a fresh UpdatePath) in
// one group, or in all when group is empty.
func (b *Backend) Update(ctx context.Context, group string) ([]GroupInfo, error) {
	var refs []string
	if group != "" {
		refs = []string{group}
	} else {
		gs, err := b.Groups(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			refs = append(refs, FormatKey(g.ID))
		}
	}
	var out []GroupInfo
	for _, ref := range refs {
		gi, _, err := b.runPlan(ctx, ref, commitPlan{kind: intentUpdate}, 0)
		if err != nil {
			return out, err
		}
		out = append(out, gi)
	}
	return out, nil
}

// Background group work scheduled by the receiver.
type jobKind int

const (
	// jobCommitProposals commits the proposals pending in a group (a
	// member's request to leave).
	jobCommitProposals jobKind = iota + 1
	// jobRejoin rejoins a group the user fell behind in, from the
	// GroupInfo in data.
	jobRejoin
	// jobRerunIntent runs again the commit intent in data (intent.go) of
	// outbox item item, whose pending commit was found stale on
	// resubmission, once the group reaches epoch.
	jobRerunIntent
	// jobRecover creates the successor of a group this member leads the
	// recovery of (recover.go).
	jobRecover
)

type groupJob struct {
	group []byte
	kind  jobKind
	data  []byte
	from  []byte // who sent data
	item  int64  // jobRerunIntent: the outbox item in state OutboxRerun
	epoch uint64 // jobRerunIntent: the epoch to wait for
}

// schedule queues a job; a full queue drops it (the next message that
// asks for it schedules it again).
func (b *Backend) schedule(j groupJob) {
	select {
	case b.jobs <- j:
	default:
		b.log.Warn("group job queue full", "group", FormatKey(j.group))
	}
}

// runJobs does scheduled group work and the periodic self-update while
// connected.
func (b *Backend) runJobs(ctx context.Context) {
	var tick <-chan time.Time
	if b.cfg.SelfUpdateInterval > 0 {
		t := time.NewTicker(b.cfg.SelfUpdateInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-b.jobs:
			b.runJob(ctx, j)
		case <-tick:
			if _, err := b.Update(ctx, ""); err != nil && ctx.Err() == nil {
				b.log.Warn("periodic self-update", "err", err)
			}
		}
	}
}

// runJob does one scheduled group job. A panic in it (the rejoin path parses
// a GroupInfo another member sent) is logged and the job dropped: it never
// ends the daemon.
func (b *Backend) runJob(ctx context.Context, j groupJob) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("panic in group job", "group", FormatKey(j.group), "stack", panicstack.Where())
		}
	}()
	switch j.kind {
	case jobRejoin:
		if err := b.rejoinGroup(ctx, j.group, j.data, j.from); err != nil && ctx.Err() == nil {
			b.log.Warn("rejoin", "group", FormatKey(j.group), "err", err)
		}
	case jobRerunIntent:
		b.rerunIntent(ctx, j)
	case jobRecover:
		if err := b.createSuccessor(ctx, j.group); err != nil && ctx.Err() == nil {
			b.log.Warn("create the successor of a stuck group", "group", FormatKey(j.group), "err", err)
		}
	case jobCommitProposals:
		_, _, err := b.runPlan(ctx, FormatKey(j.group), commitPlan{kind: intentProposals}, 0)
		if err != nil && ctx.Err() == nil {
			b.log.Warn("commit pending proposals", "group", FormatKey(j.group), "err", err)
		}
	}
}
