package backend

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file brings back a member that fell behind its group (it missed a
// commit, so it can read nothing of the later epochs): it asks the other
// members for a GroupInfo of the current epoch and rejoins by an external
// commit that replaces its old leaf (RFC 9420 section 12.4.3.2, resync).
//
// The request and the answer are control messages, sent through the
// node's plain queue (not MLS: the member behind cannot encrypt to the
// current epoch), so they are protected on their own:
//
//   - the request carries a fresh X25519 public key, signed with the
//     requester's identity key (its MLS signature key);
//   - a member answers only a request signed by a member of its current
//     tree, with the GroupInfo sealed (HPKE, RFC 9180) to that key, so the
//     node never sees the GroupInfo (whose extensions carry the group's
//     name);
//   - the member behind opens only an answer it asked for, from a member
//     of its own last tree, and rejoins only if the GroupInfo is signed by
//     that member with the signature key it knew.
//
// Control message:
//
//	"QPQC"  magic (an MLSMessage starts with version 0x0001)
//	uint8   kind (1: GroupInfo request, 2: sealed GroupInfo)
//	uint8   length of the group id (16), then the group id
//	opaque  body[rest]
//
// A request's body is the X25519 public key (32 bytes) and the Ed25519
// signature (64 bytes) of rejoinSigLabel || group id || key; an answer's
// body is the HPKE ciphertext (enc || sealed GroupInfo MLSMessage), with
// info rejoinSealLabel || group id.
var controlMagic = []byte("QPQC")

// Control message kinds.
const (
	controlGroupInfoRequest byte = 1
	controlGroupInfo        byte = 2
)

// maxControlSize bounds a control message (a GroupInfo with its tree).
const maxControlSize = 1 << 20

// Labels that bind signatures and ciphertexts to their use.
const (
	rejoinSigLabel  = "quicproquo rejoin request v1"
	rejoinSealLabel = "quicproquo rejoin groupinfo v1"
)

// rejoinRequestSize is the body size of a request.
const rejoinRequestSize = 32 + ed25519.SignatureSize

func rejoinSigned(groupID, pub []byte) []byte {
	return append(append([]byte(rejoinSigLabel), groupID...), pub...)
}

func rejoinSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.AES128GCM()
}

// rejoinAskEvery is how often a member behind asks again.
const rejoinAskEvery = 10 * time.Second

var errBadControl = errors.New("malformed control message")

func appendControl(b []byte, kind byte, groupID, body []byte) []byte {
	b = append(b, controlMagic...)
	b = append(b, kind, byte(len(groupID)))
	b = append(b, groupID...)
	return append(b, body...)
}

func parseControl(b []byte) (kind byte, groupID, body []byte, err error) {
	if len(b) > maxControlSize {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes", errBadControl, len(b))
	}
	if !bytes.HasPrefix(b, controlMagic) || len(b) < len(controlMagic)+2 {
		return 0, nil, nil, errBadControl
	}
	b = b[len(controlMagic):]
	kind, n := b[0], int(b[1])
	b = b[2:]
	if kind != controlGroupInfoRequest && kind != controlGroupInfo {
		return 0, nil, nil, fmt.Errorf("%w: kind %d", errBadControl, kind)
	}
	if n != store.GroupIDSize || len(b) < n {
		return 0, nil, nil, fmt.Errorf("%w: group id", errBadControl)
	}
	groupID, body = b[:n], b[n:]
	if kind == controlGroupInfoRequest && len(body) != rejoinRequestSize {
		return 0, nil, nil, fmt.Errorf("%w: request body of %d bytes", errBadControl, len(body))
	}
	return kind, groupID, body, nil
}

// queueControl queues a control message to recipients in the outbox.
func queueControl(tx *store.Tx, payload []byte, recipients [][]byte) error {
	cid := make([]byte, 18)
	copy(cid, "q:")
	if _, err := rand.Read(cid[2:]); err != nil {
		return err
	}
	_, err := tx.AddOutbox(store.OutboxItem{Kind: store.OutboxApplication, ClientMsgID: cid, Payload: payload, Recipients: recipients})
	return err
}

// rejoinState tracks the groups this member is behind in (in memory: a
// restart asks again at the next unreadable message).
type rejoinState struct {
	asked    map[string]time.Time        // group id -> when asked
	answered map[string]time.Time        // group id || requester -> when answered
	from     map[string][][]byte         // group id -> whom (the last tree's members)
	keys     map[string]*ecdh.PrivateKey // group id -> key the answers are sealed to
}

// askRejoin asks the other members of the user's last tree of sg for a
// GroupInfo, unless it asked recently. The caller holds gmu.
func (b *Backend) askRejoin(tx *store.Tx, sg store.Group, g *mls.Group, self []byte) error {
	key := string(sg.ID)
	if t, ok := b.rejoin.asked[key]; ok && time.Since(t) < rejoinAskEvery {
		return nil
	}
	others, err := rejoinAskable(tx, sg.ID, otherMembers(g, self))
	if err != nil || len(others) == 0 {
		return err
	}
	id, err := tx.Identity()
	if err != nil {
		return err
	}
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	pub := k.PublicKey().Bytes()
	body := append(pub, ed25519.Sign(id.PrivateKey, rejoinSigned(sg.ID, pub))...)
	if err := queueControl(tx, appendControl(nil, controlGroupInfoRequest, sg.ID, body), others); err != nil {
		return err
	}
	b.rejoin.asked[key], b.rejoin.from[key], b.rejoin.keys[key] = time.Now(), others, k
	b.log.Warn("behind in a group: asking for a GroupInfo to rejoin", "group", FormatKey(sg.ID), "epoch", g.Epoch())
	return nil
}

// handleControl applies a control message. The caller holds gmu.
func (b *Backend) handleControl(tx *store.Tx, env nodeclient.Envelope) error {
	kind, gid, body, err := parseControl(env.Payload)
	if err != nil {
		return reject("%v", err)
	}
	switch kind {
	case controlGroupInfoRequest:
		sg, g, err := loadGroup(tx, gid)
		if errors.Is(err, ErrGroupNotFound) {
			return reject("GroupInfo request for unknown group %x", gid)
		}
		if err != nil {
			return err
		}
		if !sg.LeftAt.IsZero() || !g.Active() || g.HasPendingCommit() {
			return reject("GroupInfo request for group %x, which this user is not in", gid)
		}
		m, ok := memberByDevice(g, env.Sender)
		if !ok {
			return reject("GroupInfo request for group %x from a non-member", gid)
		}
		pub, sig := body[:32], body[32:]
		if len(m.SignatureKey) != ed25519.PublicKeySize || !ed25519.Verify(m.SignatureKey, rejoinSigned(gid, pub), sig) {
			return reject("GroupInfo request for group %x: bad signature", gid)
		}
		kem, kdf, aead := rejoinSuite()
		pk, err := kem.NewPublicKey(pub)
		if err != nil {
			return reject("GroupInfo request for group %x: bad key: %v", gid, err)
		}
		if !b.mayAnswerRejoin(gid, env.Sender) {
			b.log.Debug("GroupInfo request answered recently: dropped", "group", FormatKey(gid), "sender", FormatKey(env.Sender))
			return nil
		}
		gi, err := g.GroupInfo()
		if err != nil {
			return err
		}
		sealed, err := hpke.Seal(pk, kdf, aead, append([]byte(rejoinSealLabel), gid...), gi)
		if err != nil {
			return err
		}
		return queueControl(tx, appendControl(nil, controlGroupInfo, gid, sealed), [][]byte{env.Sender})
	case controlGroupInfo:
		asked := false
		for _, m := range b.rejoin.from[string(gid)] {
			if bytes.Equal(m, env.Sender) {
				asked = true
			}
		}
		k := b.rejoin.keys[string(gid)]
		if !asked || k == nil {
			return reject("GroupInfo for group %x that was not asked for", gid)
		}
		kem, kdf, aead := rejoinSuite()
		sk, err := kem.NewPrivateKey(k.Bytes())
		if err != nil {
			return err
		}
		gi, err := hpke.Open(sk, kdf, aead, append([]byte(rejoinSealLabel), gid...), body)
		if err != nil {
			return reject("GroupInfo for group %x does not open: %v", gid, err)
		}
		hdr, err := mls.PeekMessage(gi)
		if err != nil || hdr.WireFormat != mls.WireFormatGroupInfo || !bytes.Equal(hdr.GroupID, gid) {
			return reject("GroupInfo answer for group %x is not a GroupInfo of that group", gid)
		}
		b.schedule(groupJob{group: bytes.Clone(gid), kind: jobRejoin, data: gi, from: bytes.Clone(env.Sender)})
		return nil
	}
	return reject("control kind %d", kind)
}

// rejoinGroup rejoins by an external commit from groupInfo, replacing the
// old leaf. Only an accepted commit replaces the stored state.
func (b *Backend) rejoinGroup(ctx context.Context, groupID, groupInfo, from []byte) error {
	id, err := b.identity(ctx)
	if err != nil {
		return err
	}
	b.gmu.Lock()
	defer b.gmu.Unlock()
	c := b.client()
	if c == nil {
		return ErrNotConnected
	}
	var sg store.Group
	var old *mls.Group
	if err := b.view(ctx, func(tx *store.Tx) (err error) { sg, old, err = loadGroup(tx, groupID); return }); err != nil {
		return err
	}
	hdr, err := mls.PeekMessage(groupInfo)
	if err != nil {
		return err
	}
	if old.Epoch() >= hdr.Epoch || !sg.LeftAt.IsZero() {
		return nil // caught up meanwhile (another answer), or left
	}
	// The GroupInfo must be signed by the member that sent it, with the
	// signature key this member knew for it.
	m, err := mls.ParseMLSMessage(groupInfo)
	if err != nil {
		return fmt.Errorf("GroupInfo: %w", err)
	}
	if m.GroupInfo == nil {
		return fmt.Errorf("%w: the rejoin answer is not a GroupInfo", ErrRejectEnvelope)
	}
	known, ok := memberByDevice(old, from)
	if !ok {
		return fmt.Errorf("GroupInfo from %s, who was not a member", FormatKey(from))
	}
	s, err := signer(id)
	if err != nil {
		return err
	}
	ng, commit, err := mls.JoinExternal(groupInfo, s, &mls.ExternalJoinOptions{Resync: true, Config: groupConfig, Policy: groupPolicy,
		ExtensionTypes: []mls.ExtensionType{ExtensionGroupName}})
	clear(s.SignaturePriv)
	if err != nil {
		return fmt.Errorf("external join: %w", err)
	}
	if signer, ok := ng.Member(m.GroupInfo.Signer); !ok || !bytes.Equal(signer.SignatureKey, from) || !bytes.Equal(userOf(signer), userOf(known)) {
		return fmt.Errorf("GroupInfo for group %x is not signed by %s, who sent it", groupID, FormatKey(from))
	}
	self := id.PublicKey()
	cid := make([]byte, 18)
	copy(cid, "x:")
	if _, err := rand.Read(cid[2:]); err != nil {
		return err
	}
	item := store.OutboxItem{Kind: store.OutboxCommit, GroupID: groupID, ClientMsgID: cid, Payload: commit, Recipients: otherMembers(ng, self), Epoch: hdr.Epoch}
	if err := b.update(ctx, func(tx *store.Tx) (err error) { item, err = tx.AddOutbox(item); return }); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = c.SubmitCommit(sctx, nodeclient.CommitRequest{ClientMsgID: item.ClientMsgID, Message: item.Payload})
	cancel()
	if err != nil {
		// Refused or unanswered: drop it; the next unreadable message asks
		// for a fresh GroupInfo.
		delete(b.rejoin.asked, string(groupID))
		if uerr := b.update(ctx, func(tx *store.Tx) error { return tx.SetOutboxState(item.ID, store.OutboxDropped, err.Error()) }); uerr != nil {
			return uerr
		}
		return fmt.Errorf("external commit: %w", err)
	}
	err = b.update(ctx, func(tx *store.Tx) error {
		if err := saveGroup(tx, &sg, ng); err != nil {
			return err
		}
		if _, err := tx.AppendEvent(store.Event{Kind: store.EventJoined, GroupID: groupID, Epoch: ng.Epoch(), By: id.UserPublicKey(), Detail: "rejoined by external commit"}); err != nil {
			return err
		}
		if err := closeRecovery(tx, groupID); err != nil {
			return err
		}
		return tx.SetOutboxState(item.ID, store.OutboxSent, "")
	})
	if err != nil {
		return err
	}
	delete(b.rejoin.asked, string(groupID))
	delete(b.rejoin.from, string(groupID))
	delete(b.rejoin.keys, string(groupID))
	b.log.Info("rejoined group by external commit", "group", FormatKey(groupID), "epoch", ng.Epoch())
	return nil
}

// mayAskRejoin reports whether an unreadable message of a later epoch may
// make this member ask for a GroupInfo: only one sent by a member of the
// member's last tree (the node authenticated the envelope's sender), so
// that a stranger's forged envelope costs the group nothing. The asking
// itself is rate-limited per group (rejoinAskEvery).
func (b *Backend) mayAskRejoin(g *mls.Group, env nodeclient.Envelope) bool {
	if _, ok := memberByDevice(g, env.Sender); ok {
		return true
	}
	b.log.Debug("later-epoch message from a non-member: no rejoin", "sender", FormatKey(env.Sender))
	return false
}

// maxRejoinAnswers bounds the answers remembered (memory).
const maxRejoinAnswers = 4096

// mayAnswerRejoin reports whether a member's GroupInfo request is answered:
// at most once per rejoinAskEvery for each group and requester, so that a
// member repeating its request cannot make the others flood the node.
func (b *Backend) mayAnswerRejoin(gid, requester []byte) bool {
	key := string(gid) + string(requester)
	now := time.Now()
	if t, ok := b.rejoin.answered[key]; ok && now.Sub(t) < rejoinAskEvery {
		return false
	}
	if len(b.rejoin.answered) >= maxRejoinAnswers {
		clear(b.rejoin.answered)
	}
	b.rejoin.answered[key] = now
	return true
}
