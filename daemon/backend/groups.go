package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file holds the group operations a user starts: create, send,
// members, leave, join. Commits (invite, remove, update) are in commit.go,
// what arrives from the node in receive.go.

// Limits on what a user may send or name.
const (
	MaxTextSize      = 64 << 10 // bytes of one message
	MaxGroupNameSize = 256      // bytes of a group name
)

// ExtensionGroupName is the private-use extension that carries a group's
// human name (UTF-8), so that joiners see the name its creator chose. It
// travels in the GroupInfo inside each Welcome, which only the joiners can
// decrypt, never in the GroupContext: handshake messages are PublicMessages
// the node reads.
const ExtensionGroupName mls.ExtensionType = 0xff00

// groupConfig tunes every MLS group qpd keeps: a few past epochs stay
// readable so that messages sent just before a commit still decrypt, and
// proposals and commits are PublicMessages, which the node checks against
// the group's public state.
var groupConfig = mls.Config{MaxPastEpochs: 8, PublicHandshake: true}

// requireIdentity checks that the user is registered.
func (b *Backend) requireIdentity(ctx context.Context) error {
	_, err := b.identity(ctx)
	return err
}

// signer is the MLS signer of this device (identity.go's signerOf); the
// caller clears its SignaturePriv.
func signer(id store.Identity) (*mls.Signer, error) { return signerOf(id) }

func validGroupName(name string) bool {
	return name != "" && len(name) <= MaxGroupNameSize && utf8.ValidString(name)
}

// groupName reads the name a joiner finds in its Welcome (or, for a group
// made before names left the GroupContext, the GroupContext extension),
// falling back to the hex id.
func groupName(g *mls.Group) string {
	var n []byte
	e, ok := mls.FindExtension(g.WelcomeExtensions(), ExtensionGroupName)
	if ok {
		n = e.Data
	} else {
		n, ok = g.Extension(ExtensionGroupName)
	}
	if ok && validGroupName(string(n)) {
		return string(n)
	}
	return FormatKey(g.GroupID())
}

// loadGroup decodes a stored group's MLS state.
func loadGroup(tx *store.Tx, id []byte) (store.Group, *mls.Group, error) {
	sg, err := tx.Group(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Group{}, nil, fmt.Errorf("%w: %x", ErrGroupNotFound, id)
		}
		return store.Group{}, nil, err
	}
	g, err := decodeGroup(tx, sg)
	if err != nil {
		return store.Group{}, nil, fmt.Errorf("decode state of group %x: %w", id, err)
	}
	return sg, g, nil
}

// saveGroup writes g's state into sg's row.
//
// After an application message only the secret trees moved (mls.Unsaved):
// those alone are written, onto the state they came from, instead of the
// whole state, which grows with the group. Anything else, or a row that
// holds another state, writes the whole state. g counts as saved once tx
// commits.
func saveGroup(tx *store.Tx, sg *store.Group, g *mls.Group) error {
	if g.Unsaved() != mls.UnsavedState && sg.Epoch == g.Epoch() && len(sg.State) > 0 {
		small := *sg
		small.Ratchets = g.AppendRatchets(nil)
		ok, err := tx.PutGroupRatchets(small)
		if err != nil {
			return err
		}
		if ok {
			*sg = small
			keepGroup(tx, sg, g)
			tx.AfterCommit(g.MarkSaved)
			return nil
		}
	}
	state, err := g.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode state of group %x: %w", sg.ID, err)
	}
	sg.State, sg.Ratchets, sg.StateTag, sg.Epoch = state, nil, store.NewStateTag(), g.Epoch()
	if err := tx.PutGroup(*sg); err != nil {
		return err
	}
	keepGroup(tx, sg, g)
	tx.AfterCommit(g.MarkSaved)
	return nil
}

// otherMembers lists the device keys (leaf signature keys, the queue
// addresses) of every member but this device, self: the recipients of
// what this device sends, this person's other devices included.
func otherMembers(g *mls.Group, self []byte) [][]byte {
	var out [][]byte
	for _, m := range g.Members() {
		if m.Leaf == g.OwnLeaf() || string(m.SignatureKey) == string(self) {
			continue
		}
		if len(m.SignatureKey) == ed25519.PublicKeySize {
			out = append(out, m.SignatureKey)
		}
	}
	return out
}

// memberByDevice returns the member whose leaf signature key is device
// (the key a node envelope's sender names).
func memberByDevice(g *mls.Group, device []byte) (mls.Member, bool) {
	for _, m := range g.Members() {
		if subtle.ConstantTimeCompare(m.SignatureKey, device) == 1 {
			return m, true
		}
	}
	return mls.Member{}, false
}

// membersOfUser returns the leaves (devices) of person user in g.
func membersOfUser(g *mls.Group, user []byte) []mls.Member {
	var out []mls.Member
	for _, m := range g.Members() {
		if u := userOf(m); u != nil && subtle.ConstantTimeCompare(u, user) == 1 {
			out = append(out, m)
		}
	}
	return out
}

// hasUser reports whether person user has a device in g.
func hasUser(g *mls.Group, user []byte) bool { return len(membersOfUser(g, user)) > 0 }

// people lists the persons of g, each once, in leaf order.
func people(g *mls.Group) [][]byte {
	var out [][]byte
	seen := map[string]bool{}
	for _, m := range g.Members() {
		u := userOf(m)
		if u == nil || seen[string(u)] {
			continue
		}
		seen[string(u)] = true
		out = append(out, u)
	}
	return out
}

// CreateGroup creates a group named name with the user as its only member,
// in the default group suite (Config.GroupSuite).
func (b *Backend) CreateGroup(ctx context.Context, name string) (GroupInfo, error) {
	return b.CreateGroupIn(ctx, name, b.cfg.GroupSuite)
}

// GroupSuite is the suite of new groups when the caller names none.
func (b *Backend) GroupSuite() mls.CipherSuite { return b.cfg.GroupSuite }

// CreateGroupIn is CreateGroup in cipher suite cs, which must be one qpd
// publishes KeyPackages in (Config.KeyPackageSuites): the suites others can
// be invited in.
func (b *Backend) CreateGroupIn(ctx context.Context, name string, cs mls.CipherSuite) (GroupInfo, error) {
	gi, err := b.createGroup(ctx, name, cs, nil)
	if err != nil {
		return GroupInfo{}, err
	}
	// This person's other devices join at once (best effort: offline, the
	// group is made all the same, and the next invitation adds them).
	if b.client() != nil {
		after, _, err := b.runPlan(ctx, FormatKey(gi.ID), commitPlan{kind: intentOwnDevices}, 0)
		if err != nil {
			b.log.Warn("own devices not added to the new group", "group", FormatKey(gi.ID), "err", err)
			return gi, nil
		}
		return after, nil
	}
	return gi, nil
}

// createGroup is CreateGroupIn; with a peer, the group is the direct chat
// with peer (direct.go), whose name need not be unique.
func (b *Backend) createGroup(ctx context.Context, name string, cs mls.CipherSuite, peer []byte) (GroupInfo, error) {
	if !validGroupName(name) {
		return GroupInfo{}, fmt.Errorf("%w: a group name is 1 to %d bytes of UTF-8", ErrInvalidArgument, MaxGroupNameSize)
	}
	if !slices.Contains(b.cfg.KeyPackageSuites, cs) {
		return GroupInfo{}, fmt.Errorf("%w: qpd makes groups only in the suites it publishes KeyPackages in, not %s", ErrInvalidArgument, cs.Name())
	}
	id, err := b.identity(ctx)
	if err != nil {
		return GroupInfo{}, err
	}
	groupID := make([]byte, store.GroupIDSize)
	if _, err := rand.Read(groupID); err != nil {
		return GroupInfo{}, opError("create group", err)
	}
	s, err := signer(id)
	if err != nil {
		return GroupInfo{}, opError("create group", err)
	}
	g, err := mls.CreateGroup(cs, groupID, s, &mls.CreateOptions{Config: groupConfig, Policy: groupPolicy})
	clear(s.SignaturePriv)
	if err != nil {
		return GroupInfo{}, opError("create group", err)
	}
	b.gmu.Lock()
	defer b.gmu.Unlock()
	var gi GroupInfo
	err = b.update(ctx, func(tx *store.Tx) error {
		if same, err := tx.GroupsByName(name); err != nil {
			return err
		} else if len(same) > 0 && peer == nil {
			return fmt.Errorf("%w: %q (id %x); choose another name", ErrGroupExists, truncate(name, 80), same[0].ID)
		}
		sg := store.Group{ID: groupID, Name: name, JoinReported: true}
		if err := saveGroup(tx, &sg, g); err != nil {
			return err
		}
		if peer != nil {
			if err := tx.PutDirectChat(store.DirectChat{GroupID: groupID, Peer: peer}); err != nil {
				return err
			}
		}
		if _, err := tx.AppendEvent(store.Event{Kind: store.EventJoined, GroupID: groupID, Epoch: g.Epoch(), By: id.UserPublicKey()}); err != nil {
			return err
		}
		sg, err := tx.Group(groupID)
		if err != nil {
			return err
		}
		gi, err = groupInfo(tx, sg)
		return err
	})
	if err != nil {
		return GroupInfo{}, opError("create group", err)
	}
	b.log.Info("group created", "group", FormatKey(groupID))
	if c := b.client(); c != nil {
		// Claim the id at the node now; a group created offline claims
		// it before its first commit (registerLocked).
		if err := registerGroup(ctx, c, g); err != nil {
			b.log.Warn("group not registered at the node yet", "group", FormatKey(groupID), "err", err)
		}
	}
	return gi, nil
}

// registerGroup claims g's id at the node with its first GroupInfo, so
// that the node follows its public state from then on. A group the node
// knows already is no error.
func registerGroup(ctx context.Context, c *nodeclient.Client, g *mls.Group) error {
	gi, err := g.GroupInfo()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.CreateGroup(rctx, gi); err != nil && !errors.Is(err, nodeclient.ErrGroupExists) {
		return fmt.Errorf("%w: register the group at the node: %w", ErrNotConnected, err)
	}
	return nil
}

// MembersResult is a group's membership in its current epoch.
type MembersResult struct {
	Group GroupInfo
	// Members are the leaves (devices), in leaf order; People the persons
	// they speak for, each once, with its devices.
	Members []mls.Member
	People  []Person
	Self    mls.LeafIndex
	Epoch   uint64
	// EpochAuthenticator is equal at members that share the group state.
	EpochAuthenticator []byte
}

// Person is one person in a group: the user key, its contact name (if
// any), whether it is this user, and its devices there (leaves, in order).
type Person struct {
	User    ed25519.PublicKey
	Name    string
	Self    bool
	Devices []mls.Member
}

// Members lists a group's members.
func (b *Backend) Members(ctx context.Context, group string) (MembersResult, error) {
	var res MembersResult
	err := b.view(ctx, func(tx *store.Tx) error {
		sg, err := resolveGroup(tx, group)
		if err != nil {
			return err
		}
		_, g, err := loadGroup(tx, sg.ID)
		if err != nil {
			return err
		}
		if res.Group, err = groupInfo(tx, sg); err != nil {
			return err
		}
		res.Members, res.Self, res.Epoch, res.EpochAuthenticator = g.Members(), g.OwnLeaf(), g.Epoch(), g.EpochAuthenticator()
		own, _ := g.Member(g.OwnLeaf())
		me := userOf(own)
		for _, u := range people(g) {
			p := Person{User: u, Devices: membersOfUser(g, u), Self: bytes.Equal(u, me)}
			switch c, err := tx.Contact(u); {
			case err == nil:
				p.Name = c.Name
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			res.People = append(res.People, p)
		}
		return nil
	})
	if err != nil {
		return MembersResult{}, opError("members", err)
	}
	return res, nil
}

// Application message content, inside the MLS PrivateMessage:
//
//	uint8  version (1 or 2)
//	uint64 sent_at (Unix nanoseconds, big endian)
//	[version 2] uint8 length (16), then the first 16 bytes of the
//	            sender's epoch authenticator (fork.go)
//	opaque text[rest] (UTF-8)
const (
	appContentV1   = 1
	appContentV2   = 2
	appAuthSize    = 16
	appContentHead = 9
)

// appendAppContent writes a version 1 content (no epoch authenticator).
func appendAppContent(sentAt time.Time, text string) []byte {
	return appendAppContentAuth(sentAt, text, nil)
}

// appendAppContentAuth writes a version 2 content carrying the prefix of
// auth, or version 1 when auth is empty.
func appendAppContentAuth(sentAt time.Time, text string, auth []byte) []byte {
	v := byte(appContentV1)
	if len(auth) >= appAuthSize {
		v = appContentV2
	}
	b := []byte{v}
	b = binary.BigEndian.AppendUint64(b, uint64(sentAt.UnixNano()))
	if v == appContentV2 {
		b = append(b, appAuthSize)
		b = append(b, auth[:appAuthSize]...)
	}
	return append(b, text...)
}

func parseAppContent(b []byte) (time.Time, string, error) {
	at, text, _, err := parseAppContentAuth(b)
	return at, text, err
}

// parseAppContentAuth is parseAppContent that also returns the sender's
// epoch authenticator prefix (nil in version 1).
func parseAppContentAuth(b []byte) (time.Time, string, []byte, error) {
	if len(b) < appContentHead || (b[0] != appContentV1 && b[0] != appContentV2) {
		return time.Time{}, "", nil, errors.New("application content: unknown format")
	}
	ns := binary.BigEndian.Uint64(b[1:appContentHead])
	rest := b[appContentHead:]
	var auth []byte
	if b[0] == appContentV2 {
		if len(rest) < 1+appAuthSize || rest[0] != appAuthSize {
			return time.Time{}, "", nil, errors.New("application content: bad epoch authenticator")
		}
		auth, rest = rest[1:1+appAuthSize], rest[1+appAuthSize:]
	}
	if len(rest) > MaxTextSize || !utf8.Valid(rest) {
		return time.Time{}, "", nil, errors.New("application content: text is not UTF-8 within the size limit")
	}
	if ns > 1<<62 {
		return time.Time{}, "", nil, errors.New("application content: bad timestamp")
	}
	return time.Unix(0, int64(ns)), string(rest), auth, nil
}

// messageID is the id of an application message: the first 16 bytes of
// the SHA-256 of its MLSMessage, the same for the sender and every
// receiver.
func messageID(mlsMessage []byte) []byte {
	h := sha256.Sum256(mlsMessage)
	return h[:16]
}

// SendResult is what Send queued.
type SendResult struct {
	Message store.Message
	// Delivered is true once the node has accepted the message.
	Delivered bool
	// OutboxID is the message's outbox item (see AwaitDelivery).
	OutboxID int64
}

// userClientID namespaces an API client's idempotency key, so that it
// never collides with the ids qpd makes itself.
func userClientID(cid []byte) []byte {
	if len(cid) == 0 {
		return nil
	}
	return append([]byte("u:"), cid...)
}

// Send encrypts text to a group and, in one transaction, stores the group
// state (the sender ratchet moved), the history entry and the outbox item.
// The outbox sender delivers it to the other members.
func (b *Backend) Send(ctx context.Context, group, text string, clientMsgID []byte) (SendResult, error) {
	if err := checkText(text); err != nil {
		return SendResult{}, err
	}
	return b.sendContentPresigned(ctx, group, clientMsgID, func(*store.Tx, store.Group) (*content.Message, error) {
		return content.NewText(text), nil
	}, func() *content.Message { return content.NewText(text) })
}

// Leave leaves a group. A member cannot commit its own removal (RFC 9420
// section 12.2), so qpd sends a Remove proposal for its own leaf to the
// other members, and the member with the lowest leaf index commits it (the
// next ones, in leaf order, after LeaveCommitDelay each if it has not). The
// group is marked left at once: it no longer lists as the user's, and its
// messages are no longer sent to. Should another commit win the epoch and
// drop the proposal, qpd proposes again in the new epoch.
func (b *Backend) Leave(ctx context.Context, group string) error {
	id, err := b.identity(ctx)
	if err != nil {
		return err
	}
	b.gmu.Lock()
	defer b.gmu.Unlock()
	err = b.update(ctx, func(tx *store.Tx) error {
		ref, err := resolveGroup(tx, group)
		if err != nil {
			return err
		}
		sg, g, err := loadGroup(tx, ref.ID)
		if err != nil {
			return err
		}
		if g.Active() && !g.HasPendingCommit() {
			if err := b.proposeLeave(tx, &sg, g, id.PublicKey()); err != nil {
				return err
			}
		}
		sg.LeftAt = tx.Now()
		if err := saveGroup(tx, &sg, g); err != nil {
			return err
		}
		b.signers.forget(sg.ID)
		_, err = tx.AppendEvent(store.Event{Kind: store.EventLeft, GroupID: sg.ID, Epoch: g.Epoch()})
		return err
	})
	if err != nil {
		return opError("leave", err)
	}
	return nil
}

// proposeLeave queues a Remove proposal for the user's own leaf, unless the
// user is alone in the group.
func (b *Backend) proposeLeave(tx *store.Tx, sg *store.Group, g *mls.Group, self []byte) error {
	rcpt := otherMembers(g, self)
	if len(rcpt) == 0 {
		return nil
	}
	msg, err := g.ProposeRemove(g.OwnLeaf())
	if err != nil {
		return fmt.Errorf("propose own removal: %w", err)
	}
	cid := make([]byte, 18)
	copy(cid, "p:")
	if _, err := rand.Read(cid[2:]); err != nil {
		return err
	}
	_, err = tx.AddOutbox(store.OutboxItem{Kind: store.OutboxApplication, GroupID: sg.ID, ClientMsgID: cid, Payload: msg, Recipients: rcpt, Epoch: g.Epoch()})
	return err
}

// Join joins with the Welcomes waiting in the store (with
// Config.ManualJoin; otherwise qpd joins on arrival by itself) and reports
// the groups joined by Welcome that no Join call has reported yet. With
// wait, when there is none, it waits up to wait (at most MaxWait) for one.
func (b *Backend) Join(ctx context.Context, wait time.Duration) ([]GroupInfo, error) {
	if wait < 0 || wait > MaxWait {
		return nil, fmt.Errorf("%w: wait %v is outside 0..%v", ErrInvalidArgument, wait, MaxWait)
	}
	if err := b.requireIdentity(ctx); err != nil {
		return nil, err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		changed := b.Changed()
		if err := b.joinStoredWelcomes(ctx); err != nil {
			return nil, err
		}
		var out []GroupInfo
		var ids [][]byte
		err := b.view(ctx, func(tx *store.Tx) error {
			gs, err := tx.UnreportedJoins()
			if err != nil {
				return err
			}
			for _, g := range gs {
				gi, err := groupInfo(tx, g)
				if err != nil {
					return err
				}
				out = append(out, gi)
				ids = append(ids, g.ID)
			}
			return nil
		})
		if err != nil {
			return nil, opError("join", err)
		}
		if len(out) > 0 {
			b.gmu.Lock()
			err := b.update(ctx, func(tx *store.Tx) error {
				for _, id := range ids {
					if err := tx.MarkJoinReported(id); err != nil {
						return err
					}
				}
				return nil
			})
			b.gmu.Unlock()
			if err != nil {
				return nil, opError("join", err)
			}
			return out, nil
		}
		if wait == 0 {
			return nil, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// joinBatch is how many stored Welcomes one transaction joins with, so
// that memory stays bounded however many wait.
const joinBatch = 16

// joinStoredWelcomes joins with the Welcomes kept in the store (not the
// requests waiting for consent), joinBatch at a time.
func (b *Backend) joinStoredWelcomes(ctx context.Context) error {
	for {
		more, err := b.joinWelcomeBatch(ctx)
		if err != nil || !more {
			return err
		}
	}
}

// joinWelcomeBatch joins with up to joinBatch stored Welcomes and reports
// whether there may be more.
func (b *Backend) joinWelcomeBatch(ctx context.Context) (bool, error) {
	var ws []store.Welcome
	if err := b.view(ctx, func(tx *store.Tx) (err error) { ws, err = tx.Welcomes(joinBatch); return }); err != nil || len(ws) == 0 {
		return false, err
	}
	b.gmu.Lock()
	defer b.gmu.Unlock()
	more := false
	err := b.update(ctx, func(tx *store.Tx) error {
		ws, err := tx.Welcomes(joinBatch)
		if err != nil {
			return err
		}
		more = len(ws) == joinBatch
		for _, w := range ws {
			if err := b.joinWelcome(tx, w.Payload, w.Sender); err != nil {
				if !errors.Is(err, ErrRejectEnvelope) {
					return err
				}
				b.log.Warn("stored welcome does not apply", "id", w.ID, "err", err)
				if _, err := tx.AppendEvent(store.Event{Kind: store.EventRejected, By: w.Sender, Detail: err.Error()}); err != nil {
					return err
				}
			}
			if err := tx.DeleteWelcome(w.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return more, err
}

// membershipEvents records who a commit by `by` added and removed, per
// person: a person that enters (with one device or several) is one
// EventMemberAdded, one that leaves (its last device) one
// EventMemberRemoved. A device added to or removed from a person that
// was and stays a member (a linked or revoked device) is the same kind of
// event with State store.MemberDevice and Detail the device key in hex.
// Member and By are persons (By the committer's). g is the group after the
// commit.
func membershipEvents(tx *store.Tx, groupID []byte, g *mls.Group, added, removed []mls.Member, by mls.Member, epoch uint64) error {
	committer := userOf(by)
	addedLeaf := map[mls.LeafIndex]bool{}
	for _, m := range added {
		addedLeaf[m.Leaf] = true
	}
	seen := map[string]bool{}
	emit := func(kind store.EventKind, m mls.Member, deviceOnly bool) error {
		u := userOf(m)
		if u == nil {
			return nil
		}
		e := store.Event{Kind: kind, GroupID: groupID, Member: u, By: committer, Epoch: epoch}
		if deviceOnly {
			e.State, e.Detail = store.MemberDevice, FormatKey(m.SignatureKey)
		} else {
			key := string(kind) + string(u)
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		_, err := tx.AppendEvent(e)
		return err
	}
	for _, m := range added {
		stayed := false // another device of the person was there before
		for _, o := range membersOfUser(g, userOf(m)) {
			if !addedLeaf[o.Leaf] {
				stayed = true
			}
		}
		if err := emit(store.EventMemberAdded, m, stayed); err != nil {
			return err
		}
	}
	for _, m := range removed {
		if err := emit(store.EventMemberRemoved, m, hasUser(g, userOf(m))); err != nil {
			return err
		}
	}
	return nil
}
