package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/api"
	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// followHandler records each envelope from the node queue as a message of
// one group (standing in for MLS decryption); the payload "recover" stands
// in for a recovery: the group moves to a successor, with its history and
// name, as qpd records it.
type followHandler struct{ group *[]byte }

// followSuccessor is the successor group's id after "recover".
var followSuccessor = bytes.Repeat([]byte{0x5c}, store.GroupIDSize)

func (h followHandler) HandleEnvelope(ctx context.Context, tx *store.Tx, env nodeclient.Envelope) error {
	if string(env.Payload) == "recover" {
		old, err := tx.Group(*h.group)
		if err != nil {
			return err
		}
		if err := tx.PutGroup(store.Group{ID: followSuccessor, Name: old.Name, State: []byte("s"), Epoch: 1}); err != nil {
			return err
		}
		old.LeftAt = tx.Now()
		if err := tx.PutGroup(old); err != nil {
			return err
		}
		if err := tx.MoveHistory(old.ID, followSuccessor); err != nil {
			return err
		}
		*h.group = followSuccessor
		_, err = tx.AppendEvent(store.Event{Kind: store.EventRecovered, GroupID: followSuccessor, State: backend.FormatKey(old.ID), By: env.Sender, Member: env.Sender, Epoch: 1})
		return err
	}
	m, err := tx.AppendMessage(store.Message{GroupID: *h.group, MessageID: env.ClientMsgID, Sender: env.Sender, Text: string(env.Payload), SentAt: env.EnqueuedAt})
	if err != nil {
		return err
	}
	_, err = tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: *h.group, MessageSeq: m.Seq})
	return err
}

func TestE2ERecvFollow(t *testing.T) {
	_, qpctl := e2eBuild(t)
	dir := e2eDir(t)
	socket := filepath.Join(dir, "qpd.sock")
	gid := recvSeed(t, filepath.Join(dir, "state"), "before")

	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	st, err := store.Open(context.Background(), filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.New(backend.Config{Store: st, NodeAddr: node.Addr, NodeCert: node.CertDER, Envelopes: followHandler{&gid},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := b.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := api.ListenSocket(socket)
	if err != nil {
		t.Fatal(err)
	}
	gs, _ := api.NewGRPCServer(b, api.Options{})
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(ctx) }()
	go gs.Serve(ln)
	t.Cleanup(func() { gs.Stop(); cancel(); <-runDone; st.Close() })

	cmd := exec.Command(qpctl, "--socket", socket, "--json", "recv", "--group-id", "team", "--follow")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() messageJSON {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("qpctl ended early: %s", stderr.String())
			}
			var m messageJSON
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			return m
		case <-time.After(15 * time.Second):
			t.Fatalf("no line from qpctl; stderr: %s", stderr.String())
		}
		return messageJSON{}
	}
	if m := next(); m.Text != "before" || m.Seq != 1 {
		t.Fatalf("first line %+v, want the unread message", m)
	}

	_, peerID, _ := ed25519.GenerateKey(rand.Reader)
	peer, err := nodeclient.Dial(ctx, node.Addr, nodeclient.Config{Identity: peerID, PinnedCert: node.CertDER})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := peer.Register(ctx, ""); err != nil {
		t.Fatal(err)
	}
	enqueue := func(texts ...string) {
		t.Helper()
		for _, text := range texts {
			if _, _, err := peer.Enqueue(ctx, reg.Identity, []byte(text), []byte(text)); err != nil {
				t.Fatal(err)
			}
		}
	}
	enqueue("live one")
	if m := next(); m.Text != "live one" || m.Seq != 2 || m.Sender != backend.FormatKey(peerID.Public().(ed25519.PublicKey)) {
		t.Fatalf("followed %+v, want %q from the peer", m, "live one")
	}
	// The group recovers in a successor right after a message, before
	// qpctl has marked that message read in the group (its history is
	// moved meanwhile): qpctl follows the group there, its message
	// numbers go on, and the message is marked read where it went.
	enqueue("live two", "recover", "in the successor")
	if m := next(); m.Text != "live two" || m.Seq != 3 {
		t.Fatalf("followed %+v, want %q", m, "live two")
	}
	if m := next(); m.Text != "in the successor" || m.Seq != 4 || m.GroupID != backend.FormatKey(followSuccessor) {
		t.Fatalf("followed %+v after the recovery, want the successor's message 4", m)
	}
	// What was printed is marked read.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := b.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Unread == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unread = %d after following", s.Unread)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Interrupted, qpctl ends cleanly.
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("qpctl after SIGINT: %v (%s)", err, stderr.String())
	}
	select {
	case l, ok := <-lines:
		if ok {
			t.Fatalf("extra line %q", l)
		}
	case <-time.After(time.Second):
	}
}
