package mls

import (
	"bytes"
	"crypto/ed25519"
	"errors"
)

// This file lets an application sign its messages outside the lock it
// keeps a Group under. The signature over an application message's
// FramedContentTBS (RFC 9420 §6.1) covers the content and the epoch's
// GroupContext, not the sender key: it is the costly part of Protect, and
// it needs nothing that a message of the same epoch changes. So a
// ContentSigner, taken from the Group once per epoch, signs content on any
// goroutine, and ProtectSigned encrypts it with the next sender key under
// the lock. Content signed for an epoch the Group has left (or for another
// state of the same epoch number, after a fork) is refused with
// ErrStaleSignedContent, and the application signs again with Protect.

// ErrStaleSignedContent: content signed by a ContentSigner of another
// epoch or state of the group than the Group's current one.
var ErrStaleSignedContent = errors.New("mls: content was signed for another epoch of the group")

// ContentSigner signs application content for one epoch of a group. It is
// safe for concurrent use; it holds a copy of the signature private key,
// which Wipe zeroes.
type ContentSigner struct {
	suite   Suite
	ctx     GroupContext
	self    LeafIndex
	sigPub  []byte // the own leaf's signature key in that epoch
	sigPriv []byte // a copy of the Group's encoded key
	ed      ed25519.PrivateKey
	auth    []byte // the epoch authenticator
}

// SignedContent is application content signed by a ContentSigner, for
// ProtectSigned.
type SignedContent struct {
	ac    AuthenticatedContent
	state signedState
}

// signedState names the group state content was signed in.
type signedState struct {
	groupID, treeHash, transcript, sigPub []byte
	epoch                                 uint64
	self                                  LeafIndex
}

// ContentSigner returns a signer of application content for g's current
// epoch, or an error if this client can no longer send in the group.
func (g *Group) ContentSigner() (*ContentSigner, error) {
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	own := g.tree.LeafNode(g.self)
	if own == nil {
		return nil, ErrNotMember
	}
	s := &ContentSigner{
		suite:   g.suite,
		ctx:     cloneGroupContext(&g.ctx),
		self:    g.self,
		sigPub:  bytes.Clone(own.SignatureKey),
		sigPriv: bytes.Clone(g.sigPriv),
		auth:    bytes.Clone(g.keys.epochAuthenticator),
	}
	if k := g.signingKey(); k.ed != nil {
		s.ed = bytes.Clone(k.ed)
	}
	return s, nil
}

// Epoch is the epoch s signs for.
func (s *ContentSigner) Epoch() uint64 { return s.ctx.Epoch }

// EpochAuthenticator returns a copy of the epoch authenticator of s's
// epoch (as Group.EpochAuthenticator).
func (s *ContentSigner) EpochAuthenticator() []byte { return bytes.Clone(s.auth) }

// Current reports whether s signs for g's current state: content it signs
// now is taken by g.ProtectSigned.
func (s *ContentSigner) Current(g *Group) bool {
	return s.state().matches(g)
}

// Wipe zeroes s's copy of the private key and the epoch authenticator. A
// signature s makes afterwards fails.
func (s *ContentSigner) Wipe() {
	clear(s.sigPriv)
	clear(s.ed)
	clear(s.auth)
	s.sigPriv, s.ed, s.auth = nil, nil, nil
}

// SignApplication signs plaintext as an application message's content,
// with authenticatedData, as Group.Protect would in s's epoch.
func (s *ContentSigner) SignApplication(plaintext, authenticatedData []byte) (*SignedContent, error) {
	if s.sigPriv == nil {
		return nil, errors.New("mls: content signer was wiped")
	}
	aad := bytes.Clone(authenticatedData)
	if aad == nil {
		aad = []byte{}
	}
	fc := &FramedContent{
		GroupID:           s.ctx.GroupID,
		Epoch:             s.ctx.Epoch,
		Sender:            MemberSender(s.self),
		AuthenticatedData: aad,
		ContentType:       ContentApplication,
		ApplicationData:   bytes.Clone(plaintext),
	}
	ac, err := signFramedContent(s.sign, WireFormatPrivateMessage, fc, &s.ctx)
	if err != nil {
		return nil, err
	}
	return &SignedContent{ac: *ac, state: s.state()}, nil
}

// sign is SignWithLabel with s's key.
func (s *ContentSigner) sign(label string, content []byte) ([]byte, error) {
	if s.ed != nil {
		return ed25519.Sign(s.ed, signContent(label, content)), nil
	}
	return SignWithLabel(s.suite, s.sigPriv, label, content)
}

func (s *ContentSigner) state() signedState {
	return signedState{groupID: s.ctx.GroupID, treeHash: s.ctx.TreeHash, transcript: s.ctx.ConfirmedTranscriptHash,
		sigPub: s.sigPub, epoch: s.ctx.Epoch, self: s.self}
}

// matches reports whether st is g's current state: the same group, epoch,
// tree and transcript (which a fork back to an epoch number would not
// repeat), own leaf and signature key.
func (st signedState) matches(g *Group) bool {
	own := g.tree.LeafNode(g.self)
	return own != nil && st.epoch == g.ctx.Epoch && st.self == g.self &&
		bytes.Equal(st.groupID, g.ctx.GroupID) && bytes.Equal(st.treeHash, g.ctx.TreeHash) &&
		bytes.Equal(st.transcript, g.ctx.ConfirmedTranscriptHash) && bytes.Equal(st.sigPub, own.SignatureKey)
}

// ProtectSigned encrypts sc, content a ContentSigner of g's current state
// signed, as an application message (as Protect does with content it
// signs itself). Content signed in another state fails with
// ErrStaleSignedContent; on any error the group is unchanged.
func (g *Group) ProtectSigned(sc *SignedContent) ([]byte, error) {
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	if sc == nil || !sc.state.matches(g) {
		// Nothing was tried: the group is not even marked changed (its
		// caller signs again and saves no more than a message moves).
		return nil, ErrStaleSignedContent
	}
	return g.protectApplication(func() (*AuthenticatedContent, error) {
		ac := sc.ac
		ac.Content.ApplicationData = bytes.Clone(ac.Content.ApplicationData)
		return &ac, nil
	})
}

// protectApplication encrypts the application content signed gives (for
// g's current epoch) with the next sender key, as Protect and
// ProtectSigned do; on any error the group is unchanged.
func (g *Group) protectApplication(signed func() (*AuthenticatedContent, error)) (_ []byte, err error) {
	before := g.unsaved
	defer func() {
		if err != nil {
			g.changedState()
		} else {
			g.movedRatchets(before)
		}
	}()
	if err := g.checkActive(); err != nil {
		return nil, err
	}
	ac, err := signed()
	if err != nil {
		return nil, err
	}
	undo := g.keys.secretTree.snapshotLeaf(g.self)
	msg, err := g.protect(ac, g.keys.secretTree)
	if err != nil {
		undo.restore()
		return nil, err
	}
	undo.discard()
	return msg, nil
}
