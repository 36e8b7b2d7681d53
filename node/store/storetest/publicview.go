package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/store"
)

// The public view tests run real MLS groups through the store: the views
// are mls.PublicGroup encodings (binary, growing with the tree), and each
// check applies the real commit to the view the store hands it. The store
// must give back, byte for byte, the view of the last accepted commit, and
// keep it when a check refuses.

// publicView is a group whose view the store keeps, and the view the
// store must hand to the next check.
type publicView struct {
	id   []byte
	want []byte
}

// newPublicView creates a real group of creator and registers its first
// view.
func newPublicView(t *testing.T, s store.Store, creator *grouptest.Member) *publicView {
	t.Helper()
	g, err := mls.CreateGroup(grouptest.Suite, nil, creator.Signer, &mls.CreateOptions{Config: grouptest.Config})
	noErr(t, "mls.CreateGroup", err)
	creator.Group = g
	gi, err := g.GroupInfo()
	noErr(t, "GroupInfo", err)
	pg, err := mls.NewPublicGroup(gi)
	noErr(t, "NewPublicGroup", err)
	view, err := pg.MarshalBinary()
	noErr(t, "MarshalBinary", err)
	noErr(t, "CreateGroup", s.CreateGroup(testCtx(t), g.GroupID(), creator.Pub, 0, view, [][]byte{creator.Pub}))
	return &publicView{id: g.GroupID(), want: view}
}

// check applies commit to the stored view, which must be v.want, and
// returns the verdict the node would: the roster from the tree, every
// member but the committer as recipient, the added ones welcomed.
func (v *publicView) check(t *testing.T, commit []byte) store.CommitCheck {
	return func(cur store.GroupView) (store.CommitVerdict, error) {
		if !bytes.Equal(cur.View, v.want) {
			return store.CommitVerdict{}, fmt.Errorf("check saw a view of %d bytes, not the %d bytes last stored", len(cur.View), len(v.want))
		}
		pg, err := mls.UnmarshalPublicGroup(cur.View)
		if err != nil {
			return store.CommitVerdict{}, err
		}
		if pg.Epoch() != cur.Epoch {
			return store.CommitVerdict{}, fmt.Errorf("view of epoch %d stored at epoch %d", pg.Epoch(), cur.Epoch)
		}
		res, err := pg.ApplyCommit(commit)
		if err != nil {
			return store.CommitVerdict{}, fmt.Errorf("%w: %w", errRefused, err)
		}
		var vd store.CommitVerdict
		for _, m := range pg.Members() {
			vd.Roster = append(vd.Roster, m.Identity)
			if !bytes.Equal(m.Identity, res.Committer.Identity) {
				vd.Recipients = append(vd.Recipients, m.Identity)
			}
		}
		for _, m := range res.Added {
			vd.WelcomeRecipients = append(vd.WelcomeRecipients, m.Identity)
		}
		if vd.View, err = pg.MarshalBinary(); err != nil {
			return store.CommitVerdict{}, err
		}
		v.want = vd.View
		return vd, nil
	}
}

// submit has m's pending commit res judged on the stored view and, once
// accepted, merges it.
func (v *publicView) submit(t *testing.T, s store.Store, m *grouptest.Member, res *mls.CommitResult) store.CommitResult {
	t.Helper()
	epoch := m.Group.Epoch()
	r, err := s.SubmitCommit(testCtx(t), v.id, epoch, m.Pub, nil, res.Message, res.Welcome, v.check(t, res.Message))
	noErr(t, fmt.Sprintf("SubmitCommit at epoch %d", epoch), err)
	_, err = m.Group.MergePendingCommit()
	noErr(t, "MergePendingCommit", err)
	return r
}

// Real commits move the stored view: each check sees exactly the view the
// previous commit stored, a refused (forged) commit leaves it as it was,
// and a replayed commit of a past epoch is stale.
func testGroupPublicView(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	alice, bob, carol, mallory := grouptest.NewMember(t), grouptest.NewMember(t), grouptest.NewMember(t), grouptest.NewMember(t)
	v := newPublicView(t, s, alice)
	add, err := alice.Group.AddMembers([]*mls.KeyPackage{bob.KeyPackage(t), carol.KeyPackage(t)}, nil)
	noErr(t, "AddMembers", err)
	v.submit(t, s, alice, add)
	wantGroupState(t, s, v.id, bob.Pub, store.GroupState{Epoch: 1, LastSeq: 1, Members: 3})
	// A commit re-signed by a key that is no member's: the check refuses
	// it, and the view of epoch 1 stays.
	up, err := alice.Group.SelfUpdate(nil)
	noErr(t, "SelfUpdate", err)
	forged := grouptest.Resign(t, up.Message, mallory.Signer.SignaturePriv, alice.Group.GroupContext(), nil)
	_, err = s.SubmitCommit(ctx, v.id, 1, alice.Pub, nil, forged, nil, v.check(t, forged))
	if !errors.Is(err, errRefused) {
		t.Fatalf("the forged commit: %v, want the check's refusal", err)
	}
	v.submit(t, s, alice, up)
	_, err = s.SubmitCommit(ctx, v.id, 0, alice.Pub, nil, add.Message, add.Welcome, v.check(t, add.Message))
	wantStale(t, "the replayed commit of epoch 0", err, 0, 2)
	rm, err := alice.Group.RemoveMembers([]mls.LeafIndex{2}, nil)
	noErr(t, "RemoveMembers", err)
	v.submit(t, s, alice, rm)
	wantGroupState(t, s, v.id, bob.Pub, store.GroupState{Epoch: 3, LastSeq: 3, Members: 2})
	_, err = s.GroupState(ctx, v.id, carol.Pub)
	wantErr(t, "GroupState of the removed member", err, store.ErrNotMember)
}

// The real view survives closing the store: the next commit is judged on
// it.
func testPublicViewReopen(t *testing.T, open func(t *testing.T) store.Store) {
	alice, bob := grouptest.NewMember(t), grouptest.NewMember(t)
	s := open(t)
	v := newPublicView(t, s, alice)
	add, err := alice.Group.AddMembers([]*mls.KeyPackage{bob.KeyPackage(t)}, nil)
	noErr(t, "AddMembers", err)
	v.submit(t, s, alice, add)
	noErr(t, "Close", s.Close())

	s = open(t)
	defer s.Close()
	up, err := alice.Group.SelfUpdate(nil)
	noErr(t, "SelfUpdate", err)
	v.submit(t, s, alice, up)
	wantGroupState(t, s, v.id, bob.Pub, store.GroupState{Epoch: 2, LastSeq: 2, Members: 2})
}
