package backend

import (
	"bytes"

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

// stateMark is what a decoded group is remembered by: the tag of the
// state's write (every row has one) and the ratchets moved since
// (store/group_ratchets.go).
func stateMark(sg store.Group) []byte {
	return append(bytes.Clone(sg.StateTag), sg.Ratchets...)
}

// decodeGroup returns sg's MLS group: the one kept with sg's state, or
// the state decoded with the ratchets saved since.
func decodeGroup(tx *store.Tx, sg store.Group) (*mls.Group, error) {
	v, err := tx.Decoded(groupKey(sg.ID), stateMark(sg), func([]byte) (any, error) {
		return unmarshalStored(sg)
	})
	if err != nil {
		return nil, err
	}
	return v.(*mls.Group), nil
}

// unmarshalStored decodes a stored group: its state, and the ratchets
// saved since.
func unmarshalStored(sg store.Group) (*mls.Group, error) {
	g, err := mls.UnmarshalGroupWithPolicy(sg.State, groupPolicy)
	if err != nil {
		return nil, err
	}
	if sg.Ratchets != nil {
		if err := g.LoadRatchets(sg.Ratchets); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// keepGroup keeps g, just saved as sg's state, for the next transaction.
// Only a group that decodeGroup gave is kept: a group made or joined just
// now is decoded once from what was saved, which is what every later
// transaction sees.
func keepGroup(tx *store.Tx, sg *store.Group, g *mls.Group) {
	tx.KeepDecoded(groupKey(sg.ID), stateMark(*sg), g)
}
