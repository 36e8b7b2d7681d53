package backend

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
)

// This file carries attachment references in application messages: the
// version 3 content (an internal/content message behind the sender's
// epoch authenticator prefix) next to versions 1 and 2 (text, see
// groups.go):
//
//	version 3: uint8 3, uint8 16, auth[16], content
//
// A received version 3 message is stored with its summary as text (what
// it holds, in brackets, then its text) and its attachment references
// beside it (store.Tx.AddAttachments), so that SaveAttachments can fetch
// them.

const appContentAttach = 3

// appendAttachContent is the version 3 content of m.
func appendAttachContent(m *content.Message, auth []byte) ([]byte, error) {
	if len(auth) < appAuthSize {
		return nil, fmt.Errorf("application content: epoch authenticator of %d bytes", len(auth))
	}
	b := append([]byte{appContentAttach, appAuthSize}, auth[:appAuthSize]...)
	b, err := m.Append(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return b, nil
}

// appMessage is a received application message of any version.
type appMessage struct {
	sentAt time.Time
	text   string
	auth   []byte   // the sender's epoch authenticator prefix (nil in version 1)
	refs   [][]byte // encoded attachment references (version 3)
}

// parseAppMessage reads a received application message's content.
func parseAppMessage(b []byte) (appMessage, error) {
	if len(b) == 0 || b[0] != appContentAttach {
		at, text, auth, err := parseAppContentAuth(b)
		return appMessage{sentAt: at, text: text, auth: auth}, err
	}
	if len(b) < 2+appAuthSize || b[1] != appAuthSize {
		return appMessage{}, errors.New("application content: bad epoch authenticator")
	}
	m, err := content.Parse(b[2+appAuthSize:])
	if err != nil {
		return appMessage{}, fmt.Errorf("application content: %w", err)
	}
	refs, err := attachmentRefs(m)
	if err != nil {
		return appMessage{}, err
	}
	return appMessage{sentAt: m.SentAt, text: m.Summary(), auth: b[2 : 2+appAuthSize], refs: refs}, nil
}

// attachmentRefs encodes each attachment of m on its own, for the store.
func attachmentRefs(m *content.Message) ([][]byte, error) {
	var refs [][]byte
	for _, a := range m.Attachments() {
		r, err := content.NewAttachment(a, "").Marshal()
		if err != nil {
			return nil, fmt.Errorf("application content: attachment: %w", err)
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// SendAttachment encrypts the file at path to the group's blob store at
// the node (progress is told how far) and then sends a message with its
// reference and caption (may be empty), like Send. mediaType empty: from
// the file name's extension.
func (b *Backend) SendAttachment(ctx context.Context, group, path, caption, mediaType string, clientMsgID []byte, progress Progress) (SendResult, error) {
	if len(clientMsgID) > 64 {
		return SendResult{}, fmt.Errorf("%w: client message id longer than 64 bytes", ErrInvalidArgument)
	}
	if caption != "" {
		if err := checkCaption(caption); err != nil {
			return SendResult{}, err
		}
	}
	var groupID []byte
	var repeated *SendResult
	err := b.view(ctx, func(tx *store.Tx) error {
		if cid := userClientID(clientMsgID); cid != nil {
			// A repeated request: answer as the first time, without
			// uploading the file again.
			if it, err := tx.OutboxByClientMsgID(cid); err == nil {
				msg, err := tx.Message(it.GroupID, it.MessageSeq)
				if err != nil {
					return err
				}
				repeated = &SendResult{Message: msg, Delivered: it.State == store.OutboxSent, OutboxID: it.ID}
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		sg, err := resolveGroup(tx, group)
		if err != nil {
			return err
		}
		if !sg.LeftAt.IsZero() {
			return fmt.Errorf("%w: %s", ErrNotMember, sg.Name)
		}
		groupID = sg.ID
		return nil
	})
	if err != nil {
		return SendResult{}, opError("send attachment", err)
	}
	if repeated != nil {
		return *repeated, nil
	}
	a, err := b.uploadAttachment(ctx, groupID, path, mediaType, progress)
	if err != nil {
		return SendResult{}, err
	}
	defer clear(a.Key)
	m := content.NewAttachment(a, caption)
	return b.sendAttachmentMessage(ctx, groupID, m, clientMsgID)
}

// checkCaption validates a caption like a message text.
func checkCaption(text string) error {
	if len(text) > MaxTextSize {
		return fmt.Errorf("%w: caption of %d bytes, limit %d", ErrInvalidArgument, len(text), MaxTextSize)
	}
	return nil
}

// sendAttachmentMessage sends m to the group like Send: encrypt, store
// the history entry (with the references) and the outbox item in one
// transaction.
func (b *Backend) sendAttachmentMessage(ctx context.Context, groupID []byte, m *content.Message, clientMsgID []byte) (SendResult, error) {
	id, err := b.identity(ctx)
	if err != nil {
		return SendResult{}, err
	}
	cid := userClientID(clientMsgID)
	if cid == nil {
		cid = make([]byte, 18)
		copy(cid, "m:")
		rand.Read(cid[2:])
	}
	refs, err := attachmentRefs(m)
	if err != nil {
		return SendResult{}, err
	}
	b.gmu.Lock()
	defer b.gmu.Unlock()
	var res SendResult
	err = b.update(ctx, func(tx *store.Tx) error {
		if it, err := tx.OutboxByClientMsgID(cid); err == nil {
			msg, err := tx.Message(it.GroupID, it.MessageSeq)
			if err != nil {
				return err
			}
			res = SendResult{Message: msg, Delivered: it.State == store.OutboxSent, OutboxID: it.ID}
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		sg, g, err := loadGroup(tx, groupID)
		if err != nil {
			return err
		}
		if !sg.LeftAt.IsZero() || !g.Active() {
			return fmt.Errorf("%w: %s", ErrNotMember, sg.Name)
		}
		if g.HasPendingCommit() {
			return fmt.Errorf("%w: a commit of group %s waits for the node's verdict", ErrNotConnected, sg.Name)
		}
		now := tx.Now()
		m.SentAt = now
		pt, err := appendAttachContent(m, g.EpochAuthenticator())
		if err != nil {
			return err
		}
		ct, err := g.Protect(pt, nil)
		clear(pt)
		if err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
		msg, err := tx.AppendMessage(store.Message{GroupID: sg.ID, MessageID: messageID(ct), Sender: id.PublicKey(), Text: m.Summary(), SentAt: now, Read: true, Outgoing: true})
		if err != nil {
			return err
		}
		if err := tx.AddAttachments(sg.ID, msg.Seq, refs); err != nil {
			return err
		}
		if err := saveGroup(tx, &sg, g); err != nil {
			return err
		}
		rcpt := otherMembers(g, id.PublicKey())
		it, err := tx.AddOutbox(store.OutboxItem{Kind: store.OutboxApplication, GroupID: sg.ID, ClientMsgID: cid, Payload: ct, Recipients: rcpt, Epoch: g.Epoch(), MessageSeq: msg.Seq})
		if err != nil {
			return err
		}
		res.OutboxID = it.ID
		if len(rcpt) == 0 {
			if err := tx.SetOutboxState(it.ID, store.OutboxSent, ""); err != nil {
				return err
			}
			res.Delivered = true
		}
		if _, err := tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: sg.ID, MessageSeq: msg.Seq}); err != nil {
			return err
		}
		res.Message = msg
		return nil
	})
	if err != nil {
		return SendResult{}, opError("send attachment", err)
	}
	return res, nil
}
