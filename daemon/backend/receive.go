package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file applies what arrives in the user's node queue: Welcomes join
// groups, group messages (application data, proposals, commits) are routed
// by the group id of their clear header and processed by the group's MLS
// state. Everything runs inside the transaction that advances the node
// cursor; what can never apply is rejected (and logged as an event).

// errCommitInFlight: a group has a commit whose verdict the node has not
// given yet; its messages wait until the verdict is known.
var errCommitInFlight = errors.New("a commit of this group waits for the node's verdict")

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejectEnvelope, fmt.Sprintf(format, args...))
}

// HandleEnvelope implements EnvelopeHandler with the MLS groups. The
// caller holds gmu.
func (b *Backend) HandleEnvelope(ctx context.Context, tx *store.Tx, env nodeclient.Envelope) error {
	if b.isBlocked(env.Sender) {
		return nil // dropped unread (consent.go)
	}
	if bytes.HasPrefix(env.Payload, controlMagic) {
		return b.handleControl(tx, env)
	}
	hdr, err := mls.PeekMessage(env.Payload)
	if err != nil {
		return reject("not an MLS message: %v", err)
	}
	switch hdr.WireFormat {
	case mls.WireFormatWelcome, mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage:
		if !env.Sequenced {
			// A Welcome or group message counts only in its group's order:
			// from the node's accepted commit, or its fan-out after checking
			// it. A direct enqueue could bypass the one commit per epoch,
			// or show one member what the others never see.
			return reject("%v by direct enqueue, not in the group's order", hdr.WireFormat)
		}
	}
	switch hdr.WireFormat {
	case mls.WireFormatWelcome:
		return b.handleWelcome(tx, env)
	case mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage:
		return b.handleGroupMessage(tx, env, hdr)
	}
	return reject("unexpected wire format %v", hdr.WireFormat)
}

// openWelcome reads a Welcome with the stored private half of the
// KeyPackage it is addressed to; it changes nothing.
func openWelcome(tx *store.Tx, welcome []byte) (*mls.Group, store.KeyPackageSecret, error) {
	_, refs, err := mls.WelcomeKeyPackageRefs(welcome)
	if err != nil {
		return nil, store.KeyPackageSecret{}, reject("welcome: %v", err)
	}
	var kp store.KeyPackageSecret
	found := false
	for _, ref := range refs {
		kp, err = tx.KeyPackage(ref)
		if err == nil {
			found = true
			break
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, store.KeyPackageSecret{}, err
		}
	}
	if !found {
		return nil, store.KeyPackageSecret{}, reject("welcome for none of this user's KeyPackages")
	}
	priv, err := mls.UnmarshalKeyPackagePrivate(kp.Secrets)
	clear(kp.Secrets)
	if err != nil {
		return nil, store.KeyPackageSecret{}, reject("decode KeyPackage secrets: %v", err)
	}
	g, err := mls.JoinFromWelcome(welcome, priv, &mls.JoinOptions{Config: groupConfig, Policy: groupPolicy})
	clear(priv.InitPriv)
	clear(priv.EncryptionPriv)
	clear(priv.SignaturePriv)
	if err != nil {
		return nil, store.KeyPackageSecret{}, fmt.Errorf("%w: join from welcome: %w", ErrRejectEnvelope, err)
	}
	return g, kp, nil
}

// joinWelcome joins the group of a Welcome with the stored private half of
// the KeyPackage it is addressed to.
func (b *Backend) joinWelcome(tx *store.Tx, welcome, sender []byte) error {
	_, err := b.joinWelcomeID(tx, welcome, sender)
	return err
}

// joinWelcomeID is joinWelcome that returns the group id.
func (b *Backend) joinWelcomeID(tx *store.Tx, welcome, sender []byte) ([]byte, error) {
	g, kp, err := openWelcome(tx, welcome)
	if err != nil {
		return nil, err
	}
	if e, ok := mls.FindExtension(g.WelcomeExtensions(), ExtensionSuccessor); ok {
		link, err := decodeSuccessorLink(e.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRejectEnvelope, err)
		}
		return b.joinSuccessor(tx, g, kp, link, sender)
	}
	gid := g.GroupID()
	if len(gid) != store.GroupIDSize {
		return nil, reject("group id of %d bytes", len(gid))
	}
	old, err := tx.Group(gid)
	switch {
	case err == nil && old.LeftAt.IsZero():
		return nil, reject("already a member of group %x", gid)
	case err == nil:
		// Invited back after leaving: the old history stays.
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	sg := store.Group{ID: gid, Name: groupName(g), CreatedAt: old.CreatedAt, JoinReported: false}
	if err := saveGroup(tx, &sg, g); err != nil {
		return nil, err
	}
	inviter := welcomeInviter(g, sender) // the person, sender its device
	if err := b.noteDirectWelcome(tx, &sg, g, inviter); err != nil {
		return nil, err
	}
	if !kp.LastResort {
		if err := tx.DeleteKeyPackage(kp.Ref); err != nil {
			return nil, err
		}
	}
	if _, err := tx.AppendEvent(store.Event{Kind: store.EventJoined, GroupID: gid, Epoch: g.Epoch(), By: inviter}); err != nil {
		return nil, err
	}
	b.log.Info("joined group", "group", FormatKey(gid), "epoch", g.Epoch())
	return gid, nil
}

func (b *Backend) handleGroupMessage(tx *store.Tx, env nodeclient.Envelope, hdr *mls.MessageHeader) error {
	sg, g, err := loadGroup(tx, hdr.GroupID)
	if errors.Is(err, ErrGroupNotFound) {
		return reject("message for unknown group %x", hdr.GroupID)
	}
	if err != nil {
		return err
	}
	if g.HasPendingCommit() {
		return fmt.Errorf("group %x: %w", sg.ID, errCommitInFlight)
	}
	self, err := tx.Identity()
	if err != nil {
		return err
	}
	rec, err := g.ProcessMessage(env.Payload)
	if err != nil && hdr.ContentType == mls.ContentCommit && hdr.Epoch == g.Epoch() && errors.Is(err, mls.ErrInvalidCommit) {
		// The node accepted this commit in the group's order: it is signed
		// by the submitter's leaf and valid on the public tree, but its
		// secrets (path ciphertexts, confirmation tag) are not. The group
		// cannot pass this epoch; the signature names who broke it, and
		// the honest members move to a successor without it (recover.go).
		return b.startRecovery(tx, env, sg, g, fmt.Errorf("group %x: the commit the node accepted for epoch %d, signed by %s, cannot be applied: %w",
			sg.ID, hdr.Epoch, FormatKey(env.Sender), err))
	}
	if err != nil {
		if hdr.Epoch > g.Epoch() && g.Active() && sg.LeftAt.IsZero() && b.mayAskRejoin(g, env) {
			// A message of a later epoch: this member missed a commit
			// and can read nothing more of the group until it rejoins.
			// The message is lost to it; it is logged as rejected, and
			// the request for a GroupInfo is queued, in this
			// transaction.
			if err := rejectedEvent(tx, env, fmt.Errorf("group %x is at epoch %d, message for epoch %d: %w", sg.ID, g.Epoch(), hdr.Epoch, err)); err != nil {
				return err
			}
			return b.askRejoin(tx, sg, g, self.PublicKey())
		}
		if isRefusal(err) {
			// The trust policy refused it (identity.go): the group stays
			// as it was, and the refusal is an event.
			b.log.Warn("refused by the trust policy", "group", FormatKey(sg.ID), "sender", FormatKey(env.Sender), "err", err)
			return fmt.Errorf("%w: group %x epoch %d: %w", ErrRejectEnvelope, sg.ID, hdr.Epoch, err)
		}
		return reject("group %x epoch %d: %v", sg.ID, hdr.Epoch, err)
	}
	switch rec.Kind {
	case mls.KindApplication:
		m, auth, err := parseContent(rec.Plaintext)
		if err != nil {
			return reject("group %x: %v", sg.ID, err)
		}
		if err := b.compareAuthenticator(tx, sg, g, rec, auth); err != nil {
			return err
		}
		sender, dev := senderOf(rec.Sender)
		if sender != nil && b.isBlocked(sender) {
			// A linked device of a blocked person (its own key is not
			// the blocked one): read, not kept.
			break
		}
		keepIn, err := b.historyOf(tx, sg, g, rec.Sender.SignatureKey)
		if err != nil {
			return err
		}
		if keepIn == nil {
			// Left by the user, not yet committed by the others: the
			// message is read (the ratchet moves) but not kept. (A member
			// removed by others still gets the late messages of the
			// epochs it was in.)
			break
		}
		// A merged direct chat's messages go to the chat it was merged
		// into (direct.go).
		if keepIn, err = messageHome(tx, keepIn); err != nil {
			return err
		}
		// The history lives in keepIn: the group's own, its successor's
		// once it was recovered (recovery.go), or the direct chat it was
		// merged into.
		hg, groupSeq := &sg, env.GroupSeq
		if !bytes.Equal(keepIn, sg.ID) {
			groupSeq = 0 // numbered in the other group's order, not this one's
			other, err := tx.Group(keepIn)
			if err != nil {
				return err
			}
			hg = &other
		}
		// Shown under the person; a message of this person's other
		// device is this person's own (outgoing: read, no receipt).
		own := bytes.Equal(sender, self.UserPublicKey())
		a, err := applyContent(tx, hg, m, messageID(env.Payload), sender, dev, own, groupSeq)
		if errors.Is(err, ErrNotAuthor) || errors.Is(err, ErrInvalidArgument) {
			return reject("group %x: %v", sg.ID, err)
		}
		if err != nil {
			return err
		}
		if hg != &sg {
			if err := tx.PutGroup(*hg); err != nil { // a timer it set
				return err
			}
		} else if a.Receivable && g.Active() {
			if err := b.deliveryReceipt(tx, &sg, g, self.PublicKey(), a.Message.MessageID); err != nil {
				return err
			}
		}
	case mls.KindProposal:
		p := rec.Proposal
		if p != nil && p.Type == mls.ProposalRemove && p.Remove != nil && p.Remove.Removed == rec.Sender.Leaf && !rec.OwnProposal {
			// A member asks to leave: the lowest other leaf commits it at
			// once, each further member later by its rank (in case the
			// ones before it are offline).
			j := groupJob{group: sg.ID, kind: jobCommitProposals}
			if rank := committerRank(g, rec.Sender.Leaf); rank == 0 {
				b.schedule(j)
			} else {
				time.AfterFunc(time.Duration(rank)*b.cfg.LeaveCommitDelay, func() { b.schedule(j) })
			}
		}
	case mls.KindCommit:
		// The kept signer is of the epoch before: drop it (and wipe its
		// copy of that epoch's authenticator) now, not at the next send.
		b.signers.forget(sg.ID)
		if err := membershipEvents(tx, sg.ID, g, rec.Added, rec.Removed, rec.Sender, rec.NewEpoch); err != nil {
			return err
		}
		switch {
		case rec.SelfRemoved || !g.Active():
			if sg.LeftAt.IsZero() {
				sg.LeftAt = tx.Now()
				if _, err := tx.AppendEvent(store.Event{Kind: store.EventLeft, GroupID: sg.ID, Epoch: rec.NewEpoch, By: userOf(rec.Sender)}); err != nil {
					return err
				}
			}
		case !sg.LeftAt.IsZero():
			// Still in the tree after leaving: the proposal was lost to
			// another commit; propose again in this epoch.
			if err := b.proposeLeave(tx, &sg, g, self.PublicKey()); err != nil {
				return err
			}
		case g.PendingProposals() > 0:
			b.schedule(groupJob{group: sg.ID, kind: jobCommitProposals})
		}
	}
	return saveGroup(tx, &sg, g)
}

// committerRank is this member's place among those that commit a leave
// proposal of leaver: 0 for the lowest leaf other than the leaver's, 1 for
// the next, and so on.
func committerRank(g *mls.Group, leaver mls.LeafIndex) int {
	rank := 0
	for _, m := range g.Members() {
		if m.Leaf == g.OwnLeaf() {
			return rank
		}
		if m.Leaf != leaver {
			rank++
		}
	}
	return rank
}

// rejectedEvent records a rejected envelope (a refusal of the trust
// policy as EventRefused).
func rejectedEvent(tx *store.Tx, env nodeclient.Envelope, why error) error {
	e := store.Event{Kind: store.EventRejected, By: bytes.Clone(env.Sender), MessageSeq: env.Seq, Detail: why.Error()}
	if isRefusal(why) {
		e.Kind = store.EventRefused
	}
	if hdr, err := mls.PeekMessage(env.Payload); err == nil && len(hdr.GroupID) > 0 {
		if _, err := tx.Group(hdr.GroupID); err == nil {
			e.GroupID = hdr.GroupID
		}
	}
	_, err := tx.AppendEvent(e)
	return err
}
