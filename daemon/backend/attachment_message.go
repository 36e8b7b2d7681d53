package backend

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
)

// This file sends attachment messages: an internal/content message (sent
// like every content message, compose.go) whose references applyContent
// stores beside the history entry (store.Tx.AddAttachments), so that
// SaveAttachments can fetch them.

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
	return b.sendContent(ctx, hex.EncodeToString(groupID), clientMsgID, func(*store.Tx, store.Group) (*content.Message, error) { return m, nil })
}

// checkCaption validates a caption like a message text.
func checkCaption(text string) error {
	if len(text) > MaxTextSize {
		return fmt.Errorf("%w: caption of %d bytes, limit %d", ErrInvalidArgument, len(text), MaxTextSize)
	}
	return nil
}
