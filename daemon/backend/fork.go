package backend

import (
	"crypto/subtle"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// This file detects forks. Every application message carries, inside its
// encryption, the first 16 bytes of the sender's epoch authenticator (RFC
// 9420 §8.7), which members that share the group state agree on. A
// receiver in the same epoch compares it with its own; a mismatch means
// the sender sees another group state than this member (a fork, or a
// sender that lies about it) and is recorded as an EventFork, once per
// group, epoch and sender. The node never sees the authenticator: it
// travels encrypted.

// forkKey names one reported mismatch.
type forkKey struct {
	group  string
	epoch  uint64
	sender string
}

// compareAuthenticator checks a received message's authenticator prefix
// (nil: the sender does not send one) against this member's. The caller
// holds gmu.
func (b *Backend) compareAuthenticator(tx *store.Tx, sg store.Group, g *mls.Group, rec *mls.Received, auth []byte) error {
	if auth == nil || rec.Epoch != g.Epoch() {
		return nil // no claim, or a late message of a past epoch
	}
	own := g.EpochAuthenticator()
	if len(own) >= appAuthSize && subtle.ConstantTimeCompare(own[:appAuthSize], auth) == 1 {
		return nil
	}
	k := forkKey{group: string(sg.ID), epoch: rec.Epoch, sender: string(rec.Sender.SignatureKey)}
	if b.forks[k] {
		return nil
	}
	if len(b.forks) >= maxForkReports {
		clear(b.forks)
	}
	b.forks[k] = true
	b.log.Error("fork: a member's epoch authenticator differs", "group", FormatKey(sg.ID), "epoch", rec.Epoch, "member", FormatKey(rec.Sender.SignatureKey))
	_, err := tx.AppendEvent(store.Event{Kind: store.EventFork, GroupID: sg.ID, Epoch: rec.Epoch, Member: userOf(rec.Sender),
		Detail: fmt.Sprintf("member %s has epoch authenticator %x..., this member %x...", FormatKey(rec.Sender.SignatureKey), auth[:4], own[:min(4, len(own))])})
	return err
}

// maxForkReports bounds the remembered reports (memory).
const maxForkReports = 1024
