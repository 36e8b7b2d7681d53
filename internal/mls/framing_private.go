package mls

import (
	"fmt"
)

// This file is the PrivateMessage protection of RFC 9420 §6.3. The content
// and its authentication (PrivateMessageContent, zero-padded) are sealed with
// a key and nonce from the sender's ratchet in the secret tree; the nonce is
// first XORed with a fresh random four-byte reuse guard. The sender's leaf,
// the generation and the reuse guard (SenderData) are sealed with a key and
// nonce derived from the sender_data_secret and a sample of the content
// ciphertext, so that only members learn who sent a message.

// reuseGuardSize is the length of SenderData.reuse_guard.
const reuseGuardSize = 4

// MaxPadding bounds the padding ProtectPrivate accepts.
const MaxPadding = 1 << 16

// senderData is the SenderData of RFC 9420 §6.3.2.
type senderData struct {
	leaf       LeafIndex
	generation uint32
	reuseGuard [reuseGuardSize]byte
}

func (sd *senderData) append(b []byte) []byte {
	b = AppendUint32(b, uint32(sd.leaf))
	b = AppendUint32(b, sd.generation)
	return append(b, sd.reuseGuard[:]...)
}

func parseSenderData(b []byte) (senderData, error) {
	r := NewReader(b)
	sd := senderData{leaf: LeafIndex(r.Uint32()), generation: r.Uint32()}
	copy(sd.reuseGuard[:], r.Fixed(reuseGuardSize))
	if err := r.Finish(); err != nil {
		return senderData{}, fmt.Errorf("parsing SenderData: %w", err)
	}
	return sd, nil
}

// senderDataAAD appends SenderDataAAD {group_id, epoch, content_type}.
func (m *PrivateMessage) senderDataAAD() []byte {
	b := AppendOpaque(nil, m.GroupID)
	b = AppendUint64(b, m.Epoch)
	return AppendUint8(b, uint8(m.ContentType))
}

// contentAAD appends PrivateContentAAD {group_id, epoch, content_type,
// authenticated_data}.
func (m *PrivateMessage) contentAAD() []byte {
	return AppendOpaque(m.senderDataAAD(), m.AuthenticatedData)
}

// ratchetFor returns the secret-tree ratchet content of type ct uses.
func ratchetFor(ct ContentType) RatchetType {
	if ct == ContentApplication {
		return ApplicationRatchet
	}
	return HandshakeRatchet
}

// applyReuseGuard XORs the guard into the first bytes of nonce, in place.
func applyReuseGuard(nonce []byte, guard [reuseGuardSize]byte) {
	for i := range guard {
		nonce[i] ^= guard[i]
	}
}

// ProtectPrivate encrypts ac (wire format mls_private_message, sent by a
// member) as a PrivateMessage. It takes the next key of the sender's ratchet
// in st (handshake for proposals and commits, application for application
// data), a fresh reuse guard from the package randomness source
// (crypto/rand), and appends padding zero bytes to the content.
// senderDataSecret is the epoch's sender_data_secret. The keys used are
// deleted before it returns.
func ProtectPrivate(s Suite, ac *AuthenticatedContent, st *SecretTree, senderDataSecret []byte, padding int) (*PrivateMessage, error) {
	c := &ac.Content
	switch {
	case ac.WireFormat != WireFormatPrivateMessage:
		return nil, fmt.Errorf("%w: content signed for %v, not a PrivateMessage", ErrInvalidMessage, ac.WireFormat)
	case c.Sender.Type != SenderMember:
		return nil, fmt.Errorf("%w: a PrivateMessage sender must be a member, not %v", ErrInvalidMessage, c.Sender.Type)
	case c.ContentType == ContentCommit && len(ac.Auth.ConfirmationTag) == 0:
		return nil, fmt.Errorf("%w: commit has no confirmation tag", ErrInvalidMessage)
	case padding < 0 || padding > MaxPadding:
		return nil, fmt.Errorf("%w: padding %d out of range", ErrInvalidMessage, padding)
	}
	m := &PrivateMessage{
		GroupID:           c.GroupID,
		Epoch:             c.Epoch,
		ContentType:       c.ContentType,
		AuthenticatedData: c.AuthenticatedData,
	}

	pt := c.appendBody(nil)
	pt = ac.Auth.append(pt, c.ContentType)
	pt = append(pt, make([]byte, padding)...)
	defer clear(pt)
	if err := m.seal(s, st, senderDataSecret, c.Sender.LeafIndex, pt); err != nil {
		return nil, err
	}
	return m, nil
}

// seal encrypts the PrivateMessageContent pt from leaf into m's ciphertext
// and sender data; m's header fields are already set.
func (m *PrivateMessage) seal(s Suite, st *SecretTree, senderDataSecret []byte, leaf LeafIndex, pt []byte) error {
	// The guard is drawn first, so that a failing randomness source leaves
	// the ratchet where it was.
	sd := senderData{leaf: leaf}
	if err := readRandom(sd.reuseGuard[:]); err != nil {
		return fmt.Errorf("drawing reuse guard: %w", err)
	}
	generation, key, nonce, err := st.Next(leaf, ratchetFor(m.ContentType))
	if err != nil {
		return fmt.Errorf("protecting message: %w", err)
	}
	defer clear(key)
	defer clear(nonce)
	sd.generation = generation
	applyReuseGuard(nonce, sd.reuseGuard)
	if m.Ciphertext, err = s.Seal(key, nonce, m.contentAAD(), pt); err != nil {
		return fmt.Errorf("encrypting content: %w", err)
	}

	sdKey, sdNonce, err := SenderDataKeyNonce(s, senderDataSecret, m.Ciphertext)
	if err != nil {
		return fmt.Errorf("protecting message: %w", err)
	}
	defer clear(sdKey)
	defer clear(sdNonce)
	if m.EncryptedSenderData, err = s.Seal(sdKey, sdNonce, m.senderDataAAD(), sd.append(nil)); err != nil {
		return fmt.Errorf("encrypting sender data: %w", err)
	}
	return nil
}

// UnprotectPrivate decrypts a PrivateMessage of the epoch whose secret tree
// is st and sender_data_secret is senderDataSecret, and returns its
// AuthenticatedContent. Decryption failures match ErrDecrypt; a malformed
// plaintext (including non-zero padding) matches ErrDecode; a reused or
// too distant generation fails as SecretTree.Get does. The key used is
// deleted. The caller still checks that the group id and epoch are its own,
// that the sender's leaf (ac.Content.Sender) is not blank, and verifies the
// signature with that leaf's key.
func UnprotectPrivate(s Suite, m *PrivateMessage, st *SecretTree, senderDataSecret []byte) (*AuthenticatedContent, error) {
	sd, err := openSenderData(s, m, senderDataSecret)
	if err != nil {
		return nil, err
	}
	return unprotectPrivateFrom(s, m, st, sd)
}

// openSenderData decrypts and decodes the sender data of m.
func openSenderData(s Suite, m *PrivateMessage, senderDataSecret []byte) (senderData, error) {
	sdKey, sdNonce, err := SenderDataKeyNonce(s, senderDataSecret, m.Ciphertext)
	if err != nil {
		return senderData{}, fmt.Errorf("unprotecting message: %w", err)
	}
	defer clear(sdKey)
	defer clear(sdNonce)
	sdBytes, err := s.Open(sdKey, sdNonce, m.senderDataAAD(), m.EncryptedSenderData)
	if err != nil {
		return senderData{}, fmt.Errorf("decrypting sender data: %w", err)
	}
	return parseSenderData(sdBytes)
}

// unprotectPrivateFrom is UnprotectPrivate once the sender data sd is
// decrypted.
func unprotectPrivateFrom(s Suite, m *PrivateMessage, st *SecretTree, sd senderData) (*AuthenticatedContent, error) {
	key, nonce, err := st.Get(sd.leaf, ratchetFor(m.ContentType), sd.generation)
	if err != nil {
		return nil, fmt.Errorf("unprotecting message from leaf %d: %w", sd.leaf, err)
	}
	defer clear(key)
	defer clear(nonce)
	applyReuseGuard(nonce, sd.reuseGuard)
	pt, err := s.Open(key, nonce, m.contentAAD(), m.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("decrypting content from leaf %d generation %d: %w", sd.leaf, sd.generation, err)
	}
	defer clear(pt)

	c, auth, err := parsePrivateMessageContent(m.ContentType, pt)
	if err != nil {
		return nil, err
	}
	c.GroupID = m.GroupID
	c.Epoch = m.Epoch
	c.Sender = MemberSender(sd.leaf)
	c.AuthenticatedData = m.AuthenticatedData
	return &AuthenticatedContent{WireFormat: WireFormatPrivateMessage, Content: c, Auth: auth}, nil
}

// parsePrivateMessageContent decodes a PrivateMessageContent of type ct: the
// content, its FramedContentAuthData, and padding that must be all zeros.
// The returned FramedContent has only ContentType and the content set.
func parsePrivateMessageContent(ct ContentType, pt []byte) (FramedContent, FramedContentAuthData, error) {
	c := FramedContent{ContentType: ct}
	r := NewReader(pt)
	r.readContentBody(&c)
	auth := r.readFramedContentAuthData(ct)
	for _, p := range r.Rest() {
		if p != 0 {
			r.Fail("non-zero padding in PrivateMessageContent")
			break
		}
	}
	if err := r.Finish(); err != nil {
		return FramedContent{}, FramedContentAuthData{}, fmt.Errorf("parsing PrivateMessageContent: %w", err)
	}
	return c, auth, nil
}
