package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

func backendNew(t *testing.T, cfg Config) *Backend {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return backendOn(t, cfg, st)
}

// backendOn is backendNew over an open store (a daemon restarted on its
// state).
func backendOn(t *testing.T, cfg Config, st *store.Store) *Backend {
	t.Helper()
	cfg.Store = st
	cfg.Logger = testnode.Logger()
	cfg.MinBackoff, cfg.MaxBackoff, cfg.DialTimeout = 20*time.Millisecond, 200*time.Millisecond, 2*time.Second
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func backendPutGroup(t *testing.T, b *Backend, id byte, name string) store.Group {
	t.Helper()
	g := store.Group{ID: bytes.Repeat([]byte{id}, store.GroupIDSize), Name: name, State: []byte("s"), Epoch: 1}
	if err := b.update(context.Background(), func(tx *store.Tx) error { return tx.PutGroup(g) }); err != nil {
		t.Fatal(err)
	}
	return g
}

// backendReceive records a message the way the receive path does: message
// and event in one transaction.
func backendReceive(t *testing.T, b *Backend, g store.Group, text string) {
	t.Helper()
	err := b.update(context.Background(), func(tx *store.Tx) error {
		m, err := tx.AppendMessage(store.Message{GroupID: g.ID, MessageID: []byte(text), Sender: bytes.Repeat([]byte{1}, 32), Text: text, SentAt: time.Now()})
		if err != nil {
			return err
		}
		_, err = tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: g.ID, MessageSeq: m.Seq})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMessagesWaitWakesOnArrival(t *testing.T) {
	b := backendNew(t, Config{})
	g := backendPutGroup(t, b, 1, "team")
	type result struct {
		page MessagesPage
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		p, err := b.Messages(context.Background(), MessagesQuery{Group: "team", UnreadOnly: true, MarkRead: true, Wait: 10 * time.Second})
		done <- result{p, err, time.Since(start)}
	}()
	time.Sleep(100 * time.Millisecond)
	backendReceive(t, b, g, "hello")
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Messages did not wake on a new message")
	}
	if r.err != nil || len(r.page.Messages) != 1 || r.page.Messages[0].Text != "hello" {
		t.Fatalf("Messages: %+v %v", r.page, r.err)
	}
	if r.took < 100*time.Millisecond {
		t.Errorf("returned after %v, before the message arrived", r.took)
	}
	st, err := b.Status(context.Background())
	if err != nil || st.Unread != 0 {
		t.Fatalf("unread after read: %d %v", st.Unread, err)
	}
	// Bad arguments are refused.
	if _, err := b.Messages(context.Background(), MessagesQuery{Wait: time.Hour}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("wait of an hour: %v", err)
	}
}

func TestMessagesWaitHonoursCancel(t *testing.T) {
	b := backendNew(t, Config{})
	backendPutGroup(t, b, 1, "team")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := b.Messages(ctx, MessagesQuery{Group: "team", UnreadOnly: true, Wait: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestResolveGroup(t *testing.T) {
	b := backendNew(t, Config{})
	g1 := backendPutGroup(t, b, 1, "team")
	backendPutGroup(t, b, 2, "dup")
	backendPutGroup(t, b, 3, "dup")
	ctx := context.Background()
	for _, ref := range []string{"team", FormatKey(g1.ID)} {
		g, err := b.ResolveGroup(ctx, ref)
		if err != nil || !bytes.Equal(g.ID, g1.ID) {
			t.Errorf("ResolveGroup(%q) = %x, %v", ref, g.ID, err)
		}
	}
	if _, err := b.ResolveGroup(ctx, "dup"); !errors.Is(err, ErrAmbiguousGroup) {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := b.ResolveGroup(ctx, "nope"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := b.ResolveGroup(ctx, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	k := strings.Repeat("0a", 32)
	got, err := ParseKey(k)
	if err != nil || FormatKey(got) != k {
		t.Fatalf("ParseKey(%q) = %x, %v", k, got, err)
	}
	for _, bad := range []string{"", "0a", strings.Repeat("zz", 32), strings.Repeat("0a", 33)} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseKey(%q): %v", bad, err)
		}
	}
}

func TestGroupOperationsOffline(t *testing.T) {
	b := backendNew(t, Config{Groups: true})
	ctx := context.Background()
	if _, err := b.CreateGroup(ctx, "x"); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("CreateGroup before register: %v", err)
	}
	if _, err := b.CreateGroup(ctx, strings.Repeat("n", MaxGroupNameSize+1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("CreateGroup with a long name: %v", err)
	}
	r, err := b.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g, err := b.CreateGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "team" || g.MemberCount != 1 || len(g.ID) != 16 || g.Epoch != 0 {
		t.Fatalf("created %+v", g)
	}
	m, err := b.Members(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 1 || !bytes.Equal(m.Members[0].Identity, r.Identity) || m.Self != m.Members[0].Leaf || len(m.EpochAuthenticator) == 0 {
		t.Fatalf("members %+v", m)
	}
	// Alone in the group a message needs no delivery.
	sr, err := b.Send(ctx, "team", "note to self", []byte("k1"))
	if err != nil || !sr.Delivered || sr.Message.Seq != 1 {
		t.Fatalf("Send: %+v, %v", sr, err)
	}
	again, err := b.Send(ctx, "team", "note to self", []byte("k1"))
	if err != nil || again.Message.Seq != 1 || !bytes.Equal(again.Message.MessageID, sr.Message.MessageID) {
		t.Fatalf("repeated Send: %+v, %v", again, err)
	}
	peer := ed25519.PublicKey(bytes.Repeat([]byte{2}, 32))
	if _, _, err := b.Invite(ctx, "team", []ed25519.PublicKey{peer}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Invite offline: %v", err)
	}
	if _, _, err := b.Invite(ctx, "team", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Invite nobody: %v", err)
	}
	if _, err := b.Update(ctx, "team"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Update offline: %v", err)
	}
	if _, err := b.Send(ctx, "team", strings.Repeat("x", MaxTextSize+1), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Send of a long text: %v", err)
	}
	if _, err := b.Send(ctx, "nope", "hi", nil); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("Send to an unknown group: %v", err)
	}
	if err := b.Leave(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, "team", "hi", nil); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("Send after leaving: %v", err)
	}
	joined, err := b.Join(ctx, 10*time.Millisecond)
	if err != nil || len(joined) != 0 {
		t.Errorf("Join with nothing pending: %v, %v", joined, err)
	}
}

func TestKeyPackagesUploadedOnConnect(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	b := backendNew(t, Config{NodeAddr: node.Addr, KeyPackages: MLSKeyPackages{}, KeyPackageTarget: 3, KeyPackageCheck: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	r, err := b.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Register may run before or after the connection is up; either way
	// the loop tops up on connect. Wait for the node's count.
	deadline := time.Now().Add(20 * time.Second)
	var st Status
	for {
		st, err = b.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// 3 + a last-resort one in each published suite (1 and X-Wing).
		if st.KeyPackagesKnown && st.KeyPackagesLeft == 3 && st.KeyPackageSecrets == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key packages: status %+v, register %+v", st, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every secret was stored and marked uploaded.
	err = b.view(ctx, func(tx *store.Tx) error {
		n, err := tx.CountKeyPackages()
		if err != nil || n != 8 {
			t.Errorf("secrets = %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A peer fetches one: it validates and names this identity.
	peer := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}})
	peerCtx, peerCancel := context.WithCancel(context.Background())
	peerDone := make(chan error, 1)
	go func() { peerDone <- peer.Run(peerCtx) }()
	defer func() { peerCancel(); <-peerDone }()
	if _, err := peer.FetchKey(ctx, r.Identity); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("FetchKey before register: %v", err)
	}
	if _, err := peer.Register(ctx); err != nil {
		t.Fatal(err)
	}
	for peer.Connection().State != StateConnected {
		if time.Now().After(deadline) {
			t.Fatal("peer did not connect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, err := peer.FetchKey(ctx, r.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Valid || info.Problem != "" || !bytes.Equal(info.Identity, r.Identity) || info.LastResort || info.Suite != DefaultCipherSuite {
		t.Fatalf("fetched %+v", info)
	}
	err = b.view(ctx, func(tx *store.Tx) error {
		kp, err := tx.KeyPackage(info.Ref)
		if err != nil {
			return err
		}
		priv, err := mls.UnmarshalKeyPackagePrivate(kp.Secrets)
		if err != nil {
			return err
		}
		ref, err := priv.Ref()
		if err != nil || !bytes.Equal(ref, info.Ref) || !bytes.Equal(kp.KeyPackage, info.KeyPackage) {
			t.Errorf("stored secret does not match the fetched KeyPackage (%v)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("secret of the fetched KeyPackage: %v", err)
	}
	// (The count right after the fetch may already be topped up again by
	// the periodic check; the end-to-end test sees the decrement.)
	if st, err := b.Status(ctx); err != nil || st.KeyPackagesLeft > 3 {
		t.Fatalf("left after one fetch: %d %v", st.KeyPackagesLeft, err)
	}
	// A peer without KeyPackages.
	stranger := ed25519.PublicKey(bytes.Repeat([]byte{3}, 32))
	if _, err := peer.FetchKey(ctx, stranger); !errors.Is(err, ErrNoKeyPackage) {
		t.Fatalf("FetchKey of a stranger: %v", err)
	}

	// A second Register tops up the one fetched, unless the periodic check
	// was first; never more.
	r2, err := b.Register(ctx)
	if err != nil || r2.Created || r2.KeyPackagesUploaded > 1 {
		t.Fatalf("second Register: %+v %v", r2, err)
	}
	// A connected daemon also tops up by itself.
	if _, err := peer.FetchKey(ctx, r.Identity); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := b.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.KeyPackagesLeft == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not topped up: %d left", st.KeyPackagesLeft)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Readers waiting for unread messages (marking read) do not wake each
// other: reading nothing writes nothing.
func TestWaitingReadersDoNotSpin(t *testing.T) {
	b := backendNew(t, Config{})
	g := backendPutGroup(t, b, 1, "team")
	backendReceive(t, b, g, "old")
	if _, err := b.Messages(context.Background(), MessagesQuery{Group: "team", UnreadOnly: true, MarkRead: true}); err != nil {
		t.Fatal(err)
	}
	before := b.changed.n.Load()
	done := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := b.Messages(context.Background(), MessagesQuery{Group: "team", UnreadOnly: true, MarkRead: true, Wait: 300 * time.Millisecond})
			done <- err
		}()
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := b.changed.n.Load() - before; n != 0 {
		t.Fatalf("%d writes while readers waited on nothing", n)
	}
}
