package content

import (
	"fmt"
	"strings"
)

// Kind is what a message does, from its fields (see the package guide).
type Kind uint8

// The kinds of message.
const (
	KindUnknown    Kind = iota // nothing this package understands
	KindText                   // text, a reply if InReplyTo is set
	KindReaction               // a reaction to InReplyTo
	KindEdit                   // new content for Replaces
	KindDelete                 // Replaces is deleted
	KindReceipt                // delivery or read states
	KindAttachment             // one or more attachments, maybe with text
	KindTimer                  // sets the group's disappearing-messages timer
)

func (k Kind) String() string {
	return [...]string{"unknown", "text", "reaction", "edit", "delete", "receipt", "attachment", "timer"}[k]
}

// NewText is a text message.
func NewText(text string) *Message { return New(TextPart(DispositionRender, text)) }

// NewReply is a text message replying to another.
func NewReply(to MessageID, text string) *Message {
	m := NewText(text)
	m.InReplyTo = to
	return m
}

// NewReaction is a reaction (usually one emoji) to another message.
func NewReaction(to MessageID, reaction string) *Message {
	m := New(TextPart(DispositionReaction, reaction))
	m.InReplyTo = to
	return m
}

// NewEdit replaces the text of an earlier message.
func NewEdit(of MessageID, text string) *Message {
	m := NewText(text)
	m.Replaces = of
	return m
}

// NewDelete deletes an earlier message.
func NewDelete(of MessageID) *Message {
	m := New(Part{Cardinality: CardinalityNull})
	m.Replaces = of
	return m
}

// NewReceipt reports the states of messages.
func NewReceipt(r Receipt) *Message {
	return New(Part{Disposition: DispositionSession, Cardinality: CardinalitySingle, ContentType: MediaTypeStatus, Receipt: &r})
}

// NewAttachment sends a reference to an attachment, with a caption
// unless it is empty.
func NewAttachment(a Attachment, caption string) *Message {
	p := Part{Disposition: DispositionAttachment, Cardinality: CardinalityExternal, Attachment: &a}
	if caption == "" {
		return New(p)
	}
	return New(Part{Disposition: DispositionRender, Cardinality: CardinalityMulti, Semantics: SemanticsProcessAll,
		Parts: []Part{TextPart(DispositionRender, caption), p}})
}

// NewTimer sets the group's disappearing-messages timer to seconds (0:
// off). Its body is a null part.
func NewTimer(seconds uint32) *Message {
	m := New(Part{Disposition: DispositionSession, Cardinality: CardinalityNull})
	m.Timer = &seconds
	return m
}

// Kind is what m does.
func (m *Message) Kind() Kind {
	b := &m.Body
	switch {
	case m.Timer != nil && m.Replaces == nil && b.Cardinality == CardinalityNull:
		return KindTimer
	case m.Replaces != nil && b.Cardinality == CardinalityNull:
		return KindDelete
	case m.Replaces != nil:
		return KindEdit
	case b.Disposition == DispositionReaction && b.IsText():
		return KindReaction
	case b.Cardinality == CardinalitySingle && b.Receipt != nil:
		return KindReceipt
	case len(m.Attachments()) > 0:
		return KindAttachment
	case m.Text() != "" || b.IsText():
		return KindText
	}
	return KindUnknown
}

// Text is the text of m: its text parts that are meant to be shown, in
// order, separated by newlines.
func (m *Message) Text() string {
	var parts []string
	m.Body.walk(func(p *Part) {
		if p.IsText() && p.Disposition.Known() && p.Disposition != DispositionProfile && p.Disposition != DispositionSession {
			parts = append(parts, string(p.Content))
		}
	})
	return strings.Join(parts, "\n")
}

// Attachments are the attachment references of m, in order.
func (m *Message) Attachments() []Attachment {
	var out []Attachment
	m.Body.walk(func(p *Part) {
		if p.Cardinality == CardinalityExternal && p.Attachment != nil {
			out = append(out, *p.Attachment)
		}
	})
	return out
}

// Unknown describes what in m this package does not understand (kept
// by Append, to be shown as unsupported), nil if nothing.
func (m *Message) Unknown() []string {
	var out []string
	for _, e := range m.Extensions {
		if e.Name != "" {
			out = append(out, fmt.Sprintf("extension %q", e.Name))
		} else if e.Number > 2 || e.Number < 1 { // 1 and 2 are MIMI's senderUri and roomUri
			out = append(out, fmt.Sprintf("extension %d", e.Number))
		}
	}
	m.Body.walk(func(p *Part) {
		switch {
		case !p.Disposition.Known():
			out = append(out, fmt.Sprintf("part of disposition %d", p.Disposition))
		case !p.known() && p.Cardinality == CardinalitySingle:
			out = append(out, fmt.Sprintf("part of type %q", p.ContentType))
		case !p.known():
			out = append(out, fmt.Sprintf("multipart of semantics %d", p.Semantics))
		}
	})
	return out
}

// walk calls f on p and each part within it, depth first.
func (p *Part) walk(f func(*Part)) {
	f(p)
	for i := range p.Parts {
		p.Parts[i].walk(f)
	}
}
