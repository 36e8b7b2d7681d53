package backend

import (
	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// Decoded groups stay in memory between transactions (store.Tx.Decoded):
// loadGroup takes the group decoded the last time its state was saved,
// as long as the stored state is still exactly what was saved, instead of
// decoding the state again, and the MLS caches in it (tree hashes,
// resolutions, the parsed signing key) live on. saveGroup hands the group
// back with the state it wrote; it is taken up again only once that
// transaction commits. A group that is used without being saved, or whose
// transaction or savepoint rolls back, is dropped and decoded afresh next
// time: the memory never runs ahead of the disk.

// groupKey is the memo key of a group's state.
func groupKey(id []byte) string { return "group:" + string(id) }

// decodeGroup returns sg's MLS group: the one kept with sg's state, or
// the state decoded.
func decodeGroup(tx *store.Tx, sg store.Group) (*mls.Group, error) {
	v, err := tx.Decoded(groupKey(sg.ID), sg.State, func(state []byte) (any, error) {
		return mls.UnmarshalGroupWithPolicy(state, groupPolicy)
	})
	if err != nil {
		return nil, err
	}
	return v.(*mls.Group), nil
}

// keepGroup keeps g, just saved as sg's state, for the next transaction.
// Only a group that decodeGroup gave is kept: a group made or joined just
// now is decoded once from what was saved, which is what every later
// transaction sees.
func keepGroup(tx *store.Tx, sg *store.Group, g *mls.Group) {
	tx.KeepDecoded(groupKey(sg.ID), sg.State, g)
}
