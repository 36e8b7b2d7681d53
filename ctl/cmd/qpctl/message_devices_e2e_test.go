package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// devicesSeed stores, for qpd in stateDir, a group "team" with three
// messages of one person: from a device with a hostile label, from a
// device without one, and one stored without a device (as before qpd
// recorded devices).
func devicesSeed(t *testing.T, stateDir string, person, laptop, phone []byte, label string) {
	t.Helper()
	st, err := store.Open(context.Background(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gid := bytes.Repeat([]byte{0xab}, store.GroupIDSize)
	err = st.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.PutGroup(store.Group{ID: gid, Name: "team", State: []byte("s"), Epoch: 2}); err != nil {
			return err
		}
		for i, m := range []store.Message{
			{Text: "from the laptop", SenderDevice: laptop, SenderDeviceName: label},
			{Text: "from the phone", SenderDevice: phone},
			{Text: "from before"},
		} {
			m.GroupID, m.MessageID, m.Sender = gid, []byte(m.Text), person
			m.SentAt, m.GroupSeq = time.Unix(1700000000+int64(i), 0), uint64(10+i)
			s, err := tx.AppendMessage(m)
			if err != nil {
				return err
			}
			if _, err := tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: gid, MessageSeq: s.Seq}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestE2EDevicesShowSendingDevice: recv and history print the person
// only; with --devices also the sending device's fingerprint and label,
// the label escaped like every peer's text; --json always carries the
// device, byte-exact. A message stored without a device shows "?".
func TestE2EDevicesShowSendingDevice(t *testing.T) {
	qpd, qpctl := e2eBuild(t)
	dir := e2eDir(t)
	socket := filepath.Join(dir, "qpd.sock")
	person, laptop, phone := bytes.Repeat([]byte{0xcd}, 32), bytes.Repeat([]byte{0x1a}, 32), bytes.Repeat([]byte{0x2b}, 32)
	label := "laptop\x1b[2J\n[team #9 2026-01-01T00:00:00Z] bob: fake\u202e"
	devicesSeed(t, filepath.Join(dir, "state"), person, laptop, phone, label)
	e2eStartQPD(t, qpd, dir, socket)
	who := hex.EncodeToString(person)

	plain := e2eMust(t, qpctl, socket, "history", "--group", "team")
	if strings.Contains(plain, "device") || strings.Count(plain, "] "+who+": from ") != 3 {
		t.Fatalf("history without --devices:\n%s", plain)
	}
	for _, args := range [][]string{{"history", "--group", "team", "--devices"}, {"recv", "--all", "--peek", "--devices"}} {
		out := e2eMust(t, qpctl, socket, args...)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("%v: %d lines:\n%s", args, len(lines), out)
		}
		for _, l := range lines {
			if !terminalSafe(l) {
				t.Errorf("%v: unsafe line %q", args, l)
			}
		}
		for i, want := range []string{
			who + ` (device 1a1a1a1a1a1a1a1a laptop\x1b[2J\n[team #9 2026-01-01T00:00:00Z] bob: fake\u202e): from the laptop`,
			who + " (device 2b2b2b2b2b2b2b2b): from the phone",
			who + " (device ?): from before",
		} {
			if !strings.HasSuffix(lines[i], want) {
				t.Errorf("%v: line %d is %q, want it to end in %q", args, i, lines[i], want)
			}
		}
	}

	out := e2eMust(t, qpctl, socket, "--json", "history", "--group", "team")
	var got []messageJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m messageJSON
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %q", err, l)
		}
		got = append(got, m)
	}
	if len(got) != 3 || got[0].SenderDevice != hex.EncodeToString(laptop) || got[0].SenderDeviceName != label ||
		got[1].SenderDevice != hex.EncodeToString(phone) || got[1].SenderDeviceName != "" || got[2].SenderDevice != "" || got[0].Sender != who {
		t.Fatalf("history --json:\n%s", out)
	}
}
