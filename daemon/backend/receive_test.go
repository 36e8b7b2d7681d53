package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

func TestAppContentRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	for _, text := range []string{"", "hi", "grüße ✓"} {
		gotAt, gotText, err := parseAppContent(appendAppContent(at, text))
		if err != nil || !gotAt.Equal(at) || gotText != text {
			t.Errorf("%q: %v %q %v", text, gotAt, gotText, err)
		}
	}
	auth := bytes.Repeat([]byte{7}, 32)
	gotAt, gotText, gotAuth, err := parseAppContentAuth(appendAppContentAuth(at, "with auth", auth))
	if err != nil || !gotAt.Equal(at) || gotText != "with auth" || !bytes.Equal(gotAuth, auth[:appAuthSize]) {
		t.Errorf("version 2: %v %q %x %v", gotAt, gotText, gotAuth, err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 0, 0, 0, 0, 0, 0, 0, 0}, append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, 0xff)} {
		if _, _, err := parseAppContent(bad); err == nil {
			t.Errorf("parseAppContent(%x) accepted", bad)
		}
	}
}

func FuzzParseAppContent(f *testing.F) {
	f.Add(appendAppContent(time.Unix(1, 2), "hello"))
	f.Add(appendAppContentAuth(time.Unix(1, 2), "hello", bytes.Repeat([]byte{9}, 32)))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		at, text, auth, err := parseAppContentAuth(b)
		if err != nil {
			return
		}
		again, text2, auth2, err := parseAppContentAuth(appendAppContentAuth(at, text, auth))
		if err != nil || !again.Equal(at) || text2 != text || !bytes.Equal(auth, auth2) {
			t.Fatalf("round trip of %x: %v %q %x %v", b, again, text2, auth2, err)
		}
	})
}

// receiveRig is a registered Backend with one group and a second member
// (a bare mls.Group) that makes messages for it.
type receiveRig struct {
	b       *Backend
	peer    *mls.Group
	peerKey ed25519.PrivateKey
	group   []byte
}

func receiveSetup(t testing.TB) *receiveRig {
	t.Helper()
	return receiveSetupWith(t, testnode.Logger(), "fuzz")
}

// receiveUser is a registered Backend without a node that takes every
// invitation, and one KeyPackage whose private half its store holds.
func receiveUser(t testing.TB, log *slog.Logger) (*Backend, KeyPackageBundle) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := New(Config{Store: st, Logger: log, Groups: true, Invitations: InviteAnyone})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := b.Register(ctx); err != nil {
		t.Fatal(err)
	}
	return b, storeKeyPackage(t, b)
}

// storeKeyPackage makes a KeyPackage of b's identity and stores its
// private half, as if b had uploaded it.
func storeKeyPackage(t testing.TB, b *Backend) KeyPackageBundle {
	t.Helper()
	ctx := context.Background()
	id, err := b.identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := MLSKeyPackages{}.NewKeyPackage(mustSigner(t, id), 0, false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.update(ctx, func(tx *store.Tx) error {
		return tx.PutKeyPackage(store.KeyPackageSecret{Ref: kb.Ref, KeyPackage: kb.KeyPackage, Secrets: kb.Secrets})
	}); err != nil {
		t.Fatal(err)
	}
	return kb
}

// receiveSetupWith is receiveSetup with the Backend's logger and the
// group's name given.
func receiveSetupWith(t testing.TB, log *slog.Logger, groupName string) *receiveRig {
	t.Helper()
	return receiveSetupMembers(t, log, groupName, 0)
}

// receiveSetupMembers is receiveSetupWith in a group of others more
// members (in-process, silent).
func receiveSetupMembers(t testing.TB, log *slog.Logger, groupName string, others int) *receiveRig {
	t.Helper()
	b, kb := receiveUser(t, log)
	// The peer creates a group and adds the user with a KeyPackage whose
	// private half the user's store holds.
	peerPub, peerPriv, _ := ed25519.GenerateKey(nil)
	ps := &mls.Signer{Credential: mls.NewBasicCredential(peerPub), SignaturePub: peerPub, SignaturePriv: peerPriv.Seed()}
	peer, err := mls.CreateGroup(DefaultCipherSuite, bytes.Repeat([]byte{7}, 16), ps, &mls.CreateOptions{Config: groupConfig})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mls.ParseKeyPackage(kb.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	kps := []*mls.KeyPackage{kp}
	for range others {
		pub, priv, _ := ed25519.GenerateKey(nil)
		s := &mls.Signer{Credential: mls.NewBasicCredential(pub), SignaturePub: pub, SignaturePriv: priv.Seed()}
		ob, err := MLSKeyPackages{}.NewKeyPackage(s, 0, false, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		okp, err := mls.ParseKeyPackage(ob.KeyPackage)
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, okp)
	}
	res, err := peer.AddMembers(kps, &mls.CommitOptions{
		WelcomeExtensions: []mls.Extension{{Type: ExtensionGroupName, Data: []byte(groupName)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	r := &receiveRig{b: b, peer: peer, peerKey: peerPriv, group: peer.GroupID()}
	if applied, err := r.apply(1, res.Welcome, peerPub); err != nil || !applied {
		t.Fatalf("welcome: %v %v", applied, err)
	}
	return r
}

// apply applies an envelope as the node delivers group traffic: in the
// group's order (sequenced). A nil sender is the peer (an envelope without
// a sender is the node's own notice).
func (r *receiveRig) apply(seq uint64, payload, sender []byte) (bool, error) {
	return r.deliver(seq, payload, sender, true)
}

// applyDirect applies an envelope as a direct enqueue delivers it.
func (r *receiveRig) applyDirect(seq uint64, payload, sender []byte) (bool, error) {
	return r.deliver(seq, payload, sender, false)
}

func (r *receiveRig) deliver(seq uint64, payload, sender []byte, sequenced bool) (bool, error) {
	if sender == nil {
		sender = r.peerKey.Public().(ed25519.PublicKey)
	}
	return r.b.applyEnvelope(context.Background(), nodeclient.Envelope{Seq: seq, Sender: sender, Payload: payload, EnqueuedAt: time.Now(), Sequenced: sequenced})
}

// Envelopes that can never apply are skipped and logged as rejected
// events; good ones around them still apply.
func TestReceiveRejectsAndKeepsServing(t *testing.T) {
	r := receiveSetup(t)
	ctx := context.Background()
	joined, err := r.b.Join(ctx, 0)
	if err != nil || len(joined) != 1 || joined[0].Name != "fuzz" {
		t.Fatalf("join: %+v %v", joined, err)
	}
	good, err := r.peer.Protect(appendAppContent(time.Now(), "good"), nil)
	if err != nil {
		t.Fatal(err)
	}
	badContent, err := r.peer.Protect([]byte("not our format"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range [][]byte{[]byte("garbage"), badContent, good, good} {
		applied, err := r.apply(uint64(2+i), p, nil)
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if want := i == 2; applied != want {
			t.Errorf("envelope %d applied %v, want %v", i, applied, want)
		}
	}
	p, err := r.b.Messages(ctx, MessagesQuery{Group: FormatKey(r.group)})
	if err != nil || len(p.Messages) != 1 || p.Messages[0].Text != "good" {
		t.Fatalf("history: %+v %v", p.Messages, err)
	}
	if rejected := countEvents(t, r.b, store.EventRejected); rejected != 3 {
		t.Errorf("%d rejected events, want 3 (garbage, bad content, replay)", rejected)
	}
	var cur uint64
	r.b.view(ctx, func(tx *store.Tx) (err error) { cur, err = tx.NodeCursor(); return })
	if cur != 5 {
		t.Errorf("cursor %d, want 5", cur)
	}
}

// Whatever the node delivers, the receiver applies it or rejects it; it
// never panics and never fails in a way that would stop the queue.
func FuzzHandleEnvelope(f *testing.F) {
	r := receiveSetup(f)
	good, _ := r.peer.Protect(appendAppContent(time.Now(), "seed"), nil)
	f.Add(good)
	gi, _ := r.peer.GroupInfo()
	f.Add(gi)
	f.Add([]byte{0, 1, 0, 2})
	seq := uint64(1)
	f.Fuzz(func(t *testing.T, payload []byte) {
		seq++
		if _, err := r.apply(seq, payload, nil); err != nil && !errors.Is(err, ErrRejectEnvelope) {
			t.Fatalf("apply: %v", err)
		}
	})
}

// receiveLogBuffer collects log output from several goroutines.
type receiveLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *receiveLogBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *receiveLogBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// The daemon's log, even at debug level, holds no group names and no
// message texts: they are the users' content.
func TestLogHoldsNoContent(t *testing.T) {
	var logs receiveLogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const joinedName, createdName, text = "joined-name-5a1c", "created-name-93be", "message-text-7f02"
	r := receiveSetupWith(t, log, joinedName)
	ctx := context.Background()
	if _, err := r.b.Join(ctx, 0); err != nil {
		t.Fatal(err)
	}
	msg, err := r.peer.Protect(appendAppContent(time.Now(), text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := r.apply(2, msg, nil); err != nil || !applied {
		t.Fatalf("message: %v %v", applied, err)
	}
	if _, err := r.b.CreateGroup(ctx, createdName); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "joined group") || !strings.Contains(out, "group created") {
		t.Fatalf("the log does not show the join and the creation:\n%s", out)
	}
	for _, secret := range []string{joinedName, createdName, text} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
}

// The envelope handler meets mutated real messages (every truncation, and
// byte flips spread over the message) with a clear verdict each time, and a
// good message still applies afterwards. This is FuzzHandleEnvelope's check
// over a fixed set of inputs: under -fuzz the instrumented SQLite makes each
// run too slow for CI's short fuzz pass.
func TestHandleEnvelopeMutations(t *testing.T) {
	r := receiveSetup(t)
	ctx := context.Background()
	if _, err := r.b.Join(ctx, 0); err != nil {
		t.Fatal(err)
	}
	good, err := r.peer.Protect(appendAppContent(time.Now(), "seed"), nil)
	if err != nil {
		t.Fatal(err)
	}
	gi, err := r.peer.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(1)
	try := func(p []byte) {
		t.Helper()
		seq++
		if _, err := r.apply(seq, p, nil); err != nil && !errors.Is(err, ErrRejectEnvelope) {
			t.Fatalf("envelope %x: %v", p, err)
		}
	}
	for _, seed := range [][]byte{good, gi} {
		step := len(seed)/40 + 1
		for n := 0; n < len(seed); n += step {
			try(seed[:n])
		}
		for i := 0; i < len(seed); i += step {
			m := bytes.Clone(seed)
			m[i] ^= 0x5a
			try(m)
		}
	}
	after, err := r.peer.Protect(appendAppContent(time.Now(), "after"), nil)
	if err != nil {
		t.Fatal(err)
	}
	seq++
	if applied, err := r.apply(seq, after, nil); err != nil || !applied {
		t.Fatalf("a good message after the mutations: applied %v, err %v", applied, err)
	}
}

// A handshake message, group message or Welcome that arrives by direct
// enqueue is not in its group's order: it is rejected, the group stays as it was, and the
// same commit through the group's order applies.
func TestReceiveHandshakeOnlyGroupSequenced(t *testing.T) {
	r := receiveSetup(t)
	ctx := context.Background()
	if _, err := r.b.Join(ctx, 0); err != nil {
		t.Fatal(err)
	}
	up, err := r.peer.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.peer.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	epoch := func() uint64 {
		t.Helper()
		m, err := r.b.Members(ctx, FormatKey(r.group))
		if err != nil {
			t.Fatal(err)
		}
		return m.Epoch
	}
	before := epoch()
	if applied, err := r.applyDirect(2, up.Message, nil); err != nil || applied {
		t.Fatalf("commit by direct enqueue: applied %v, %v", applied, err)
	}
	prop, err := r.peer.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := r.applyDirect(3, prop, nil); err != nil || applied {
		t.Fatalf("proposal by direct enqueue: applied %v, %v", applied, err)
	}
	if epoch() != before {
		t.Fatalf("a directly enqueued commit moved the group to epoch %d", epoch())
	}
	if applied, err := r.apply(4, up.Message, nil); err != nil || !applied {
		t.Fatalf("the same commit in the group's order: applied %v, %v", applied, err)
	}
	if epoch() != before+1 {
		t.Fatalf("group at epoch %d after the commit, want %d", epoch(), before+1)
	}
	// Nor does an application message count by direct enqueue: a member
	// could show one member what the others never see.
	app, err := r.peer.Protect(appendAppContent(time.Now(), "direct"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := r.applyDirect(5, app, nil); err != nil || applied {
		t.Fatalf("application message by direct enqueue: applied %v, %v", applied, err)
	}
	// Nor a Welcome to another group, which applies in the group's order.
	id, err := r.b.identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := MLSKeyPackages{}.NewKeyPackage(mustSigner(t, id), 0, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.b.update(ctx, func(tx *store.Tx) error {
		return tx.PutKeyPackage(store.KeyPackageSecret{Ref: kb.Ref, KeyPackage: kb.KeyPackage, Secrets: kb.Secrets})
	}); err != nil {
		t.Fatal(err)
	}
	peerPub := r.peerKey.Public().(ed25519.PublicKey)
	ps := &mls.Signer{Credential: mls.NewBasicCredential(peerPub), SignaturePub: peerPub, SignaturePriv: r.peerKey.Seed()}
	other, err := mls.CreateGroup(DefaultCipherSuite, bytes.Repeat([]byte{8}, 16), ps, &mls.CreateOptions{Config: groupConfig})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := mls.ParseKeyPackage(kb.KeyPackage)
	add, err := other.AddMembers([]*mls.KeyPackage{kp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied, err := r.applyDirect(6, add.Welcome, peerPub); err != nil || applied {
		t.Fatalf("Welcome by direct enqueue: applied %v, %v", applied, err)
	}
	if applied, err := r.apply(7, add.Welcome, peerPub); err != nil || !applied {
		t.Fatalf("the same Welcome in the group's order: applied %v, %v", applied, err)
	}
}
