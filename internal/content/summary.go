package content

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Summary is m as one line of plain text for a reader that shows only
// text: the text itself, with what else m does in brackets (reply,
// reaction, edit, delete, receipt, attachment, expiry, unsupported
// parts), so that nothing in it goes unseen.
func (m *Message) Summary() string {
	var s []string
	switch m.Kind() {
	case KindReaction:
		s = append(s, fmt.Sprintf("[reaction %s to %s]", m.Text(), shortID(m.InReplyTo)))
	case KindEdit:
		s = append(s, fmt.Sprintf("[edit of %s]", shortID(m.Replaces)))
	case KindDelete:
		s = append(s, fmt.Sprintf("[delete of %s]", shortID(m.Replaces)))
	case KindTimer:
		if *m.Timer == 0 {
			s = append(s, "[disappearing messages off]")
		} else {
			s = append(s, fmt.Sprintf("[disappearing messages after %ds]", *m.Timer))
		}
	case KindReceipt:
		for _, st := range m.Body.Receipt.Statuses {
			s = append(s, fmt.Sprintf("[%s %s]", st.Status, shortID(st.ID)))
		}
	}
	if m.InReplyTo != nil && m.Kind() != KindReaction {
		s = append(s, fmt.Sprintf("[reply to %s]", shortID(m.InReplyTo)))
	}
	for _, a := range m.Attachments() {
		s = append(s, fmt.Sprintf("[attachment %q, %s, %d bytes]", a.Name, a.ContentType, a.Size))
	}
	if e := m.Expires; e != nil {
		if e.Relative {
			s = append(s, fmt.Sprintf("[expires %ds after sending]", e.Seconds))
		} else {
			s = append(s, fmt.Sprintf("[expires at Unix time %d]", e.Seconds))
		}
	}
	for _, u := range m.Unknown() {
		s = append(s, "[unsupported "+u+"]")
	}
	if k := m.Kind(); k != KindReaction && k != KindReceipt {
		if t := m.Text(); t != "" {
			s = append(s, t)
		}
	}
	return strings.Join(s, " ")
}

// shortID is the first bytes of id in hex, enough to tell messages apart
// on screen.
func shortID(id MessageID) string {
	if len(id) > 8 {
		id = id[:8]
	}
	return hex.EncodeToString(id)
}
