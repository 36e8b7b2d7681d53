package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// recvSeed writes a group with messages into a state folder before qpd
// starts, the way qpd's receive path records them.
func recvSeed(t *testing.T, stateDir string, texts ...string) []byte {
	t.Helper()
	return recvSeedGroup(t, stateDir, "team", texts...)
}

// recvSeedGroup is recvSeed with a group name.
func recvSeedGroup(t *testing.T, stateDir, name string, texts ...string) []byte {
	t.Helper()
	st, err := store.Open(context.Background(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gid := bytes.Repeat([]byte{0xab}, store.GroupIDSize)
	err = st.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.PutGroup(store.Group{ID: gid, Name: name, State: []byte("s"), Epoch: 2}); err != nil {
			return err
		}
		for i, text := range texts {
			m, err := tx.AppendMessage(store.Message{GroupID: gid, MessageID: []byte(text), Sender: bytes.Repeat([]byte{0xcd}, 32), Text: text, SentAt: time.Unix(1700000000+int64(i), 0), GroupSeq: uint64(10 + i)})
			if err != nil {
				return err
			}
			if _, err := tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: gid, MessageSeq: m.Seq}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return gid
}

func TestE2ERecv(t *testing.T) {
	qpd, qpctl := e2eBuild(t)
	dir := e2eDir(t)
	socket := filepath.Join(dir, "qpd.sock")
	recvSeed(t, filepath.Join(dir, "state"), "first", "second")
	e2eStartQPD(t, qpd, dir, socket)

	r := e2eRun(t, qpctl, socket, "recv", "--group-id", "team", "--peek")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "first") || !strings.Contains(r.stdout, "[team #11 ") {
		t.Fatalf("recv --peek: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "--json", "recv", "--group-id", "team")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("recv --json: %+v", r)
	}
	var m struct {
		GroupID  string `json:"group_id"`
		Sender   string `json:"sender"`
		Text     string `json:"text"`
		Seq      uint64 `json:"seq"`
		GroupSeq uint64 `json:"group_seq"`
		SentAt   string `json:"sent_at"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	if m.GroupID != strings.Repeat("ab", 16) || m.Sender != strings.Repeat("cd", 32) || m.Text != "second" || m.Seq != 2 || m.GroupSeq != 11 || m.SentAt != "2023-11-14T22:13:21Z" {
		t.Fatalf("message JSON: %+v", m)
	}
	// Printed once: a second recv prints nothing new.
	r = e2eRun(t, qpctl, socket, "recv", "--group-id", "team")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("second recv: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "recv", "--all")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("recv --all: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "--json", "groups")
	var g struct {
		Name    string `json:"name"`
		LastSeq uint64 `json:"last_seq"`
		Unread  uint64 `json:"unread"`
		Epoch   uint64 `json:"epoch"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil || g.Name != "team" || g.LastSeq != 2 || g.Unread != 0 || g.Epoch != 2 {
		t.Fatalf("groups --json: %+v (%v)", r, err)
	}
}
