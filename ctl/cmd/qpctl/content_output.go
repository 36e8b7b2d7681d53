package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// kindName names a message kind for --json and watch.
func kindName(k daemonv1.MessageKind) string {
	if k == daemonv1.MessageKind_MESSAGE_KIND_UNSPECIFIED {
		return "text"
	}
	return strings.ToLower(strings.TrimPrefix(k.String(), "MESSAGE_KIND_"))
}

// receiptName names a receipt status.
func receiptName(s daemonv1.ReceiptStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RECEIPT_STATUS_"))
}

// shortRef is enough of a message id to tell messages apart on screen
// (and to name one to reply, react, edit or delete).
func shortRef(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// contentLine is the escaped text of m with what it is and what happened
// to it in brackets before it: [reply to ID], [reaction R to ID],
// [edited], [deleted], [disappearing messages ...], [expired],
// [disappears at T], [delivered N, read M].
func contentLine(m *daemonv1.Message, note string) string {
	var s []string
	if note != "" {
		s = append(s, "["+note+"]")
	}
	text := m.GetText()
	switch m.GetKind() {
	case daemonv1.MessageKind_MESSAGE_KIND_REPLY:
		s = append(s, "[reply to "+shortRef(m.GetRef())+"]")
	case daemonv1.MessageKind_MESSAGE_KIND_REACTION:
		s = append(s, "[reaction "+escapeLine(text)+" to "+shortRef(m.GetRef())+"]")
		text = ""
	case daemonv1.MessageKind_MESSAGE_KIND_TIMER:
		if n, _ := strconv.ParseUint(text, 10, 32); n > 0 {
			s = append(s, "[disappearing messages after "+(time.Duration(n)*time.Second).String()+"]")
		} else {
			s = append(s, "[disappearing messages off]")
		}
		text = ""
	case daemonv1.MessageKind_MESSAGE_KIND_EXPIRED:
		s = append(s, "[expired]")
	}
	if m.GetDeleted() && note != "deleted" {
		s = append(s, "[deleted]")
	}
	if m.GetEditedAt() != nil && note != "edited" {
		s = append(s, "[edited]")
	}
	if m.GetExpiresAt() != nil {
		s = append(s, "[disappears at "+timeString(m.GetExpiresAt())+"]")
	}
	if rs := m.GetReceipts(); len(rs) > 0 {
		var delivered, read int
		for _, r := range rs {
			switch r.GetStatus() {
			case daemonv1.ReceiptStatus_RECEIPT_STATUS_READ:
				read++
			case daemonv1.ReceiptStatus_RECEIPT_STATUS_DELIVERED:
				delivered++
			}
		}
		s = append(s, fmt.Sprintf("[delivered %d, read %d]", delivered+read, read))
	}
	if text != "" {
		s = append(s, escapeText(text))
	}
	return strings.Join(s, " ")
}

// changeJSON is an edit or delete as printed with --json: the message as
// it is now and what happened to it.
type changeJSON struct {
	Event string `json:"event"`
	messageJSON
}

// printChange prints an edit or delete event of groupID (or of any group)
// that recv --follow sees; other events are not messages and are skipped.
func (a *app) printChange(ev *daemonv1.Event, groupID string) error {
	if d, what := ev.GetMemberAdded(), "linked"; d != nil || ev.GetMemberRemoved() != nil {
		if d == nil {
			d, what = ev.GetMemberRemoved(), "removed"
		}
		return a.printDeviceChange(d, what, groupID)
	}
	m, what := ev.GetEdited(), "edited"
	if m == nil {
		m, what = ev.GetDeleted(), "deleted"
	}
	if m == nil || (groupID != "" && m.GetGroupId() != groupID) {
		return nil
	}
	if a.json {
		return a.printJSON(changeJSON{Event: what, messageJSON: toMessageJSON(m)})
	}
	return a.printMessageLine(m, what)
}

// printDeviceChange prints that a person who stays in a group linked
// (what "linked") or removed ("removed") a device there; other membership
// changes are not part of a message stream.
func (a *app) printDeviceChange(e *daemonv1.MemberEvent, what, groupID string) error {
	if e.GetDevice() == "" || (groupID != "" && e.GetGroupId() != groupID) {
		return nil
	}
	if a.json {
		return a.printJSON(map[string]any{"event": "device_" + what, "group_id": e.GetGroupId(), "group_name": e.GetGroupName(), "identity": e.GetIdentity(), "device": e.GetDevice(), "by": e.GetBy(), "epoch": e.GetEpoch()})
	}
	name := e.GetGroupName()
	if name == "" {
		name = e.GetGroupId()
	}
	_, err := fmt.Fprintf(a.stdout, "[%s] %s %s a device (%s)\n", escapeLine(name), escapeLine(e.GetIdentity()), what, escapeLine(e.GetDevice()))
	return err
}
