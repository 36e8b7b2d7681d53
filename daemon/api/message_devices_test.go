package api_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	"github.com/quicproquo/quicproquo/daemon/store"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// TestMessageSenderDeviceAndDeviceEventName: History (Messages) and
// Subscribe give each message's sending device and its label, empty for a
// message stored without one; a device event of a contact names the
// person by the contact name it has now.
func TestMessageSenderDeviceAndDeviceEventName(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	stateDir := filepath.Join(dir, "state")
	apiSeed(t, stateDir, "team")
	person, laptop, phone := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{0x1a}, 32), bytes.Repeat([]byte{0x2b}, 32)
	st, err := store.Open(context.Background(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	gid := bytes.Repeat([]byte{0x42}, store.GroupIDSize)
	err = st.Update(context.Background(), func(tx *store.Tx) error {
		for _, m := range []store.Message{
			{Text: "laptop", SenderDevice: laptop, SenderDeviceName: "laptop\x1b[2J"},
			{Text: "phone", SenderDevice: phone},
			{Text: "old"},
		} {
			m.GroupID, m.MessageID, m.Sender, m.SentAt = gid, []byte(m.Text), person, time.Unix(1700000000, 0)
			s, err := tx.AppendMessage(m)
			if err != nil {
				return err
			}
			if _, err := tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: gid, MessageSeq: s.Seq}); err != nil {
				return err
			}
		}
		if err := tx.PutContact(store.Contact{Identity: person, Name: "alice"}); err != nil {
			return err
		}
		_, err := tx.AppendEvent(store.Event{Kind: store.EventDevice, Member: person, By: phone, State: "linked"})
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	d := apiStart(t, dir)
	ctx := ctxT(t)
	c := d.Dial(t)

	check := func(what string, ms []*daemonv1.Message) {
		t.Helper()
		if len(ms) != 3 {
			t.Fatalf("%s: %d messages", what, len(ms))
		}
		for i, w := range []struct {
			dev  []byte
			name string
		}{{laptop, "laptop\x1b[2J"}, {phone, ""}, {nil, ""}} {
			m := ms[i]
			if m.GetSender() != backend.FormatKey(person) || !bytes.Equal(m.GetSenderDevice(), w.dev) || m.GetSenderDeviceName() != w.name {
				t.Errorf("%s: %q from %s device %x %q, want %x %q", what, m.GetText(), m.GetSender(), m.GetSenderDevice(), m.GetSenderDeviceName(), w.dev, w.name)
			}
		}
	}
	r, err := c.Messages(ctx, &daemonv1.MessagesRequest{Group: "team"})
	if err != nil {
		t.Fatal(err)
	}
	check("history", r.GetMessages())

	s, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	evs := recvEvents(t, s, 5) // joined, three messages, the device
	var ms []*daemonv1.Message
	for _, ev := range evs[1:4] {
		ms = append(ms, ev.GetMessage())
	}
	check("subscribe", ms)
	dev := evs[4].GetDevice()
	if dev.GetUser() != backend.FormatKey(person) || dev.GetUserName() != "alice" || dev.GetDevice() != backend.FormatKey(phone) || dev.GetRevoked() {
		t.Fatalf("device event %v", dev)
	}
}
