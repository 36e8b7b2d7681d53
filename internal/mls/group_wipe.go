package mls

// This file wipes secrets a Group no longer needs from memory.
//
// What stays in memory, and why: the current epoch's secrets and secret
// tree (to send and receive); for each of the last Config.MaxPastEpochs
// epochs its sender-data secret and secret tree (for late application
// messages), and the resumption PSKs of the last few epochs (for PSK
// proposals, reinitialization and branches); the HPKE private keys of this
// client's leaf and direct path (to decrypt the next UpdatePath); the
// signature key; the keys of this client's own Update proposals of the
// epoch; and a pending commit's next state until it is merged or
// discarded. Everything else is zeroed once replaced: a superseded epoch's
// secrets, path private keys and Update keys (wipeSuperseded), the state
// of a commit that is discarded, lost its epoch or was refused
// (wipeDiscarded), the copies a finished receive kept to undo it
// (secretLeafUndo.discard; after a failed receive they are the live state
// again), and parent-node keys a tree change dropped (TreePrivateKeys.Prune). Go's garbage collector may
// still have copied a slice before it was zeroed; the stored form
// (MarshalBinary) is the application's to protect.

// wipeDiscarded zeroes the secrets of ng, a state derived from old (through
// clone) that will not be installed: its epoch secrets if they are its own,
// its secret trees (always its own copies) and its private keys (deep
// copies). Slices ng shares with old are left alone.
func wipeDiscarded(ng, old *Group) {
	if ng == nil || ng == old {
		return
	}
	k := &ng.keys
	if !sameSlice(k.initSecret, old.keys.initSecret) {
		for _, v := range [][]byte{k.initSecret, k.senderDataSecret, k.exporterSecret, k.epochAuthenticator,
			k.externalSecret, k.confirmationKey, k.membershipKey, k.resumptionPSK} {
			clear(v)
		}
	}
	if k.secretTree != nil && k.secretTree != old.keys.secretTree {
		k.secretTree.Clear()
	}
	for _, p := range ng.past {
		if p.secretTree != nil && !old.hasSecretTree(p.secretTree) {
			p.secretTree.Clear()
		}
	}
	if ng.priv != nil && ng.priv != old.priv {
		ng.priv.Wipe()
	}
	if ng.signKey != old.signKey {
		ng.signKey.wipe()
	}
	if ng.pending != nil && ng.pending != old.pending {
		wipeDiscarded(ng.pending.state, old)
	}
}

// hasSecretTree reports whether st is one of g's own secret trees.
func (g *Group) hasSecretTree(st *SecretTree) bool {
	if g.keys.secretTree == st {
		return true
	}
	for _, p := range g.past {
		if p.secretTree == st {
			return true
		}
	}
	return false
}

// sameSlice reports whether a and b share their first byte.
func sameSlice(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// discard zeroes the copies u kept, once the operation it could undo has
// succeeded: they are secrets the tree has since deleted.
func (u *secretLeafUndo) discard() {
	if u == nil || !u.active {
		return
	}
	for _, v := range u.nodes {
		clear(v)
	}
	if u.ratchets != nil {
		clearRatchets(u.ratchets)
	}
	u.nodes, u.ratchets, u.active = nil, nil, false
}
