package backend

import (
	"bytes"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// A text is signed outside its send transaction, on the API caller's
// goroutine (mls.ContentSigner): the signature is most of a send's
// work, and the sends' transactions run one at a time under gmu, so that
// signing there kept the other callers and the second core waiting. A
// send that finds no other queued signs while its transaction begins and
// reads the group, which waits for the signature where it needs it; one
// that would join a batch signs before it joins (sendBatched). The
// transaction takes the signed content if it was signed for the group's
// current state and settings (mls.Group.ProtectSigned); otherwise, after
// a commit say, it composes and signs again itself, as before. Each group
// a text was sent to keeps the signer of its current epoch here, made
// under gmu by the send before; the first text of an epoch is signed in
// its transaction.

// signers keeps the groups' content signers, by the group argument the
// API was given (a name or an id), and wipes a replaced signer's key once
// no caller uses it.
type signers struct {
	mu sync.Mutex
	m  map[string]*signerEntry
}

// signerEntry is the signer of one group's epoch, with what the content
// it signs depends on besides the epoch.
type signerEntry struct {
	s         *mls.ContentSigner
	groupID   []byte
	disappear time.Duration
	users     int  // callers signing with s now
	retired   bool // replaced or forgotten: wiped once users is 0
}

// presigned is a text signed before its transaction.
type presigned struct {
	m         *content.Message
	sc        *mls.SignedContent
	groupID   []byte
	disappear time.Duration
}

// presign signs the text m would be for group with the group's kept
// signer, as post would in the transaction; nil if no signer is kept or
// the signing failed (the transaction then signs).
func (b *Backend) presign(group string, m *content.Message) *presigned {
	e := b.signers.take(group)
	if e == nil {
		return nil
	}
	defer b.signers.give(e)
	m.SentAt = b.st.Now()
	setExpiry(m, e.disappear)
	pt, err := appendContent(m, e.s.EpochAuthenticator())
	if err != nil {
		return nil
	}
	sc, err := e.s.SignApplication(pt, nil)
	clear(pt)
	if err != nil {
		return nil
	}
	return &presigned{m: m, sc: sc, groupID: e.groupID, disappear: e.disappear}
}

// usable reports whether p was signed for sg as it is in the transaction
// (g's state is checked by ProtectSigned).
func (p *presigned) usable(sg *store.Group) bool {
	return p != nil && bytes.Equal(p.groupID, sg.ID) && p.disappear == sg.DisappearAfter
}

// keepSigner keeps a signer of g's current epoch for sends to group (sg),
// unless the one kept is of it already. The caller holds gmu.
func (b *Backend) keepSigner(group string, sg *store.Group, g *mls.Group) {
	b.signers.mu.Lock()
	e := b.signers.m[group]
	current := e != nil && e.s.Current(g) && bytes.Equal(e.groupID, sg.ID) && e.disappear == sg.DisappearAfter
	b.signers.mu.Unlock()
	if current {
		return
	}
	s, err := g.ContentSigner()
	if err != nil {
		b.signers.forget(sg.ID)
		return
	}
	b.signers.put(group, &signerEntry{s: s, groupID: bytes.Clone(sg.ID), disappear: sg.DisappearAfter})
}

func (ss *signers) take(group string) *signerEntry {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	e := ss.m[group]
	if e != nil {
		e.users++
	}
	return e
}

func (ss *signers) give(e *signerEntry) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	e.users--
	e.wipeIfDone()
}

func (ss *signers) put(group string, e *signerEntry) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*signerEntry{}
	}
	if old := ss.m[group]; old != nil {
		old.retire()
	}
	ss.m[group] = e
}

// forget drops the signers of group id (left, or this device removed).
func (ss *signers) forget(id []byte) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, e := range ss.m {
		if bytes.Equal(e.groupID, id) {
			e.retire()
			delete(ss.m, k)
		}
	}
}

// forgetAll drops every signer (the daemon stops).
func (ss *signers) forgetAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, e := range ss.m {
		e.retire()
		delete(ss.m, k)
	}
}

// retire and wipeIfDone run with ss.mu held.
func (e *signerEntry) retire() {
	e.retired = true
	e.wipeIfDone()
}

func (e *signerEntry) wipeIfDone() {
	if e.retired && e.users == 0 {
		e.s.Wipe()
	}
}
