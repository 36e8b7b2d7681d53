package backend

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/grouptest"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// contentMessage finds a message of u's history by its message id.
func contentMessage(t *testing.T, u *groupsUser, gid string, id []byte) (store.Message, bool) {
	t.Helper()
	p, err := u.b.Messages(context.Background(), MessagesQuery{Group: gid, Limit: store.MaxMessageQuery})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Messages {
		if bytes.Equal(m.MessageID, id) {
			return m, true
		}
	}
	return store.Message{}, false
}

// contentSend checks a send and returns the message id.
func contentSend(t *testing.T, what string) func(SendResult, error) []byte {
	return func(r SendResult, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return r.Message.MessageID
	}
}

// contentWithRaw is alice and bob in a group with a raw member (a hostile
// one, or a later client), which bob has seen join.
func contentWithRaw(t *testing.T) (alice, bob *groupsUser, raw *grouptest.Member, gid string) {
	t.Helper()
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob = groupsStart(t, node), groupsStart(t, node)
	_, gid = groupsForm(t, "with-raw", alice, bob)
	raw = hostileMember(t, node, alice, gid)
	groupsWait(t, "bob sees the raw member", func() bool {
		m, err := bob.b.Members(context.Background(), gid)
		return err == nil && len(m.Members) == 3
	})
	return alice, bob, raw, gid
}

// rejectedFrom counts u's rejected events of envelopes sent by key.
func rejectedFrom(t *testing.T, u *groupsUser, key []byte) int {
	t.Helper()
	evs, err := u.b.EventsAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == store.EventRejected && bytes.Equal(e.By, key) {
			n++
		}
	}
	return n
}

// contentFanOut has a raw member send content messages to its group, as
// any client could write them.
func contentFanOut(t *testing.T, from *grouptest.Member, msgs ...*content.Message) {
	t.Helper()
	for _, m := range msgs {
		pt, err := appendContent(m, from.Group.EpochAuthenticator())
		if err != nil {
			t.Fatal(err)
		}
		ct, err := from.Group.Protect(pt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := from.Conn.FanOut(context.Background(), m.Salt, ct); err != nil {
			t.Fatal(err)
		}
	}
}

// Replies, reactions, edits, deletes and receipts show on every member,
// and only the author may edit or delete a message.
func TestContentRepliesReactionsEditsDeletesReceipts(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "chat", alice, bob)

	hello := contentSend(t, "send")(alice.b.Send(ctx, gid, "hello", nil))
	groupsWait(t, "bob has hello", func() bool { _, ok := contentMessage(t, bob, gid, hello); return ok })
	ref := hex.EncodeToString(hello)
	reply := contentSend(t, "reply")(bob.b.Reply(ctx, gid, ref[:10], "hi back", nil))
	reaction := contentSend(t, "react")(bob.b.React(ctx, gid, ref, "👍", nil))
	contentSend(t, "edit")(alice.b.Edit(ctx, gid, ref, "hello, world", nil))
	oops := contentSend(t, "send")(alice.b.Send(ctx, gid, "oops", nil))
	contentSend(t, "delete")(alice.b.Delete(ctx, gid, hex.EncodeToString(oops), nil))

	if _, err := bob.b.Edit(ctx, gid, ref, "bob's words", nil); !errors.Is(err, ErrNotAuthor) {
		t.Fatalf("bob edits alice's message: %v, want ErrNotAuthor", err)
	}
	if _, err := bob.b.Delete(ctx, gid, ref, nil); !errors.Is(err, ErrNotAuthor) {
		t.Fatalf("bob deletes alice's message: %v, want ErrNotAuthor", err)
	}
	if _, err := bob.b.React(ctx, gid, "#999", "x", nil); !errors.Is(err, ErrMessageNotFound) {
		t.Fatalf("react to a missing message: %v", err)
	}

	for _, u := range []*groupsUser{alice, bob} {
		groupsWait(t, "every change on every member", func() bool {
			h, _ := contentMessage(t, u, gid, hello)
			r, okR := contentMessage(t, u, gid, reply)
			x, okX := contentMessage(t, u, gid, reaction)
			o, _ := contentMessage(t, u, gid, oops)
			return h.Text == "hello, world" && !h.EditedAt.IsZero() &&
				okR && r.Kind == store.KindReply && bytes.Equal(r.Ref, hello) && r.Text == "hi back" &&
				okX && x.Kind == store.KindReaction && bytes.Equal(x.Ref, hello) && x.Text == "👍" &&
				o.Deleted && o.Text == ""
		})
	}
	// Bob's daemon sent a delivery receipt of hello on arrival; reading
	// it sends a read receipt. Alice sees both, per member.
	groupsWait(t, "alice sees bob's delivery receipt", func() bool {
		h, _ := contentMessage(t, alice, gid, hello)
		return len(h.Receipts) == 1 && bytes.Equal(h.Receipts[0].Member, bob.id) && h.Receipts[0].Status >= 1
	})
	if _, err := bob.b.Messages(ctx, MessagesQuery{Group: gid, UnreadOnly: true, MarkRead: true}); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "alice sees bob's read receipt", func() bool {
		h, _ := contentMessage(t, alice, gid, hello)
		return len(h.Receipts) == 1 && h.Receipts[0].Status == int(content.StatusRead)
	})
	evs, err := alice.b.EventsAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []store.EventKind{store.EventEdited, store.EventDeleted, store.EventReceipt} {
		if !slices.ContainsFunc(evs, func(e Event) bool { return e.Kind == k }) {
			t.Errorf("alice has no %s event", k)
		}
	}
}

// A hostile member's edit or delete of another member's message is
// refused by every member: the message stays as its author wrote it, and
// the refusal is an event naming the hostile member.
func TestContentHostileEditRefused(t *testing.T) {
	alice, bob, mallory, gid := contentWithRaw(t)
	ctx := context.Background()
	hello := contentSend(t, "send")(alice.b.Send(ctx, gid, "the original", nil))
	groupsWait(t, "bob has it", func() bool { _, ok := contentMessage(t, bob, gid, hello); return ok })

	contentFanOut(t, mallory, content.NewEdit(hello, "forged words"), content.NewDelete(hello))
	for _, u := range []*groupsUser{alice, bob} {
		groupsWait(t, "both forgeries refused", func() bool { return rejectedFrom(t, u, mallory.Pub) == 2 })
		m, _ := contentMessage(t, u, gid, hello)
		if m.Text != "the original" || !m.EditedAt.IsZero() || m.Deleted {
			t.Fatalf("after the forgeries: %+v", m)
		}
	}
	// The group goes on.
	after := contentSend(t, "send")(alice.b.Send(ctx, gid, "still here", nil))
	groupsWait(t, "bob reads on", func() bool { _, ok := contentMessage(t, bob, gid, after); return ok })
}

// A member sets a disappearing-messages timer; the messages sent after it
// are gone from every member's history after the timer, and from the
// bytes of every member's database file and log after a clean stop.
func TestContentDisappearingMessagesLeaveEveryMember(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	ctx := context.Background()
	var dirs []string
	var users []*groupsUser
	var stores []*store.Store
	for range 2 {
		dir := t.TempDir()
		st, err := store.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		dirs, stores = append(dirs, dir), append(stores, st)
		users = append(users, groupsStartOn(t, node, Config{}, st))
		t.Cleanup(func() { st.Close() })
	}
	alice, bob := users[0], users[1]
	_, gid := groupsForm(t, "vanishing", alice, bob)
	if _, err := alice.b.SetDisappearing(ctx, gid, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob has the timer", func() bool {
		g, err := bob.b.ResolveGroup(ctx, gid)
		return err == nil && g.DisappearAfter == 2*time.Second
	})
	const secret = "zebra-quartz-7193 disappears"
	id := contentSend(t, "send")(alice.b.Send(ctx, gid, secret, nil))
	groupsWait(t, "bob has it, with its expiry", func() bool {
		m, ok := contentMessage(t, bob, gid, id)
		return ok && m.Text == secret && !m.ExpiresAt.IsZero()
	})
	for _, u := range users {
		groupsWait(t, "the message is gone", func() bool {
			m, ok := contentMessage(t, u, gid, id)
			return !ok || (m.Kind == store.KindExpired && m.Text == "")
		})
	}
	// A clean stop, as qpd's: the store folds its log into the file.
	for i, u := range users {
		u.stop()
		if err := stores[i].Close(); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{store.FileName, store.FileName + "-wal"} {
			b, err := os.ReadFile(filepath.Join(dirs[i], name))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("member %d: %s still holds the text", i, name)
			}
		}
	}
}

// Messages of the formats before internal/content, as stored by earlier
// daemons, still read as text.
func TestContentOldFormatsRead(t *testing.T) {
	v1, _ := hex.DecodeString("0117a5d5a1d0e3b50068656c6c6f")
	v2, _ := hex.DecodeString("0217a5d5a1d0e3b50010000102030405060708090a0b0c0d0e0f6f6c64")
	for _, tc := range []struct {
		in   []byte
		text string
		auth bool
	}{{v1, "hello", false}, {v2, "old", true}} {
		m, auth, err := parseContent(tc.in)
		if err != nil {
			t.Fatalf("%x: %v", tc.in, err)
		}
		if m.Kind() != content.KindText || m.Text() != tc.text || m.SentAt.UnixNano() != 0x17a5d5a1d0e3b500 || (auth != nil) != tc.auth {
			t.Errorf("%x: %v %q %v %x", tc.in, m.Kind(), m.Text(), m.SentAt, auth)
		}
	}
	auth := bytes.Repeat([]byte{7}, 32)
	b, err := appendContent(content.NewReply(bytes.Repeat([]byte{1}, 16), "new"), auth)
	if err != nil {
		t.Fatal(err)
	}
	m, got, err := parseContent(b)
	if err != nil || m.Kind() != content.KindText || m.Text() != "new" || !bytes.Equal(got, auth[:appAuthSize]) {
		t.Fatalf("version 3: %+v %x %v", m, got, err)
	}
	for _, bad := range [][]byte{{3}, {3, 15}, append([]byte{3, 16}, make([]byte, 16)...), {4, 0}} {
		if _, _, err := parseContent(bad); err == nil {
			t.Errorf("parseContent(%x) accepted", bad)
		}
	}
}

// FuzzParseContent: no input makes parseContent panic, and what it
// accepts has a kind and a text within bounds.
func FuzzParseContent(f *testing.F) {
	v1, _ := hex.DecodeString("0117a5d5a1d0e3b50068656c6c6f")
	v2, _ := hex.DecodeString("0217a5d5a1d0e3b50010000102030405060708090a0b0c0d0e0f6f6c64")
	f.Add(v1)
	f.Add(v2)
	auth := bytes.Repeat([]byte{7}, 32)
	for _, m := range []*content.Message{content.NewText("hi"), content.NewReaction(bytes.Repeat([]byte{1}, 16), "👍"),
		content.NewTimer(60), content.NewDelete(bytes.Repeat([]byte{2}, 16))} {
		b, err := appendContent(m, auth)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := parseContent(b)
		if err != nil {
			return
		}
		_ = m.Kind()
		_ = unknownNotes(m, m.Text())
		sg := &store.Group{DisappearAfter: time.Second}
		_ = expiresAt(sg, m, time.Now())
	})
}

// What a later client sends and this daemon does not understand (a part
// of an unknown type, an unknown extension, an attachment) is kept and
// shown as such, never dropped; setting a timer is no commit, so the
// node's view of the group does not change.
func TestContentUnknownPartsShown(t *testing.T) {
	alice, bob, later, gid := contentWithRaw(t)
	ctx := context.Background()
	before, err := bob.b.Members(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.b.SetDisappearing(ctx, gid, time.Hour); err != nil {
		t.Fatal(err)
	}
	markdown := content.New(content.Part{Disposition: content.DispositionRender, Cardinality: content.CardinalitySingle, ContentType: "text/markdown", Content: []byte("*hi*")})
	extended := content.NewText("with a future extension")
	extended.Extensions = []content.Extension{{Name: "x-future", Value: []byte{0x01}}}
	file := content.NewAttachment(content.Attachment{ContentType: "image/png", Location: "blob:1", Size: 3, EncAlg: 29, Key: make([]byte, 32),
		Nonce: make([]byte, 12), AAD: []byte{}, HashAlg: content.HashSHA256, Hash: make([]byte, 32), Name: "cat.png"}, "")
	contentFanOut(t, later, markdown, extended, file)
	want := []string{`[unsupported part of type "text/markdown"]`, `[unsupported extension "x-future"] with a future extension`, `[attachment "cat.png", image/png, 3 bytes]`}
	for _, u := range []*groupsUser{alice, bob} {
		groupsWait(t, "all three shown", func() bool {
			texts := groupsTexts(t, u, gid)
			n := 0
			for _, w := range want {
				if slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(s, w) }) {
					n++
				}
			}
			return n == len(want)
		})
		m, err := u.b.Members(ctx, gid)
		if err != nil || m.Epoch != before.Epoch {
			t.Fatalf("the timer changed the epoch: %d, was %d (%v)", m.Epoch, before.Epoch, err)
		}
		g, err := u.b.ResolveGroup(ctx, gid)
		if err != nil || g.DisappearAfter != time.Hour {
			t.Fatalf("timer %v %v", g.DisappearAfter, err)
		}
	}
}

// A member whose daemon runs with NoReceipts sends none: the group's
// order puts any receipt of its before its next message, and the sender
// has none by then. It still sees the others' receipts.
func TestContentReceiptsOptOut(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStartWith(t, node, Config{NoReceipts: true})
	ctx := context.Background()
	_, gid := groupsForm(t, "quiet", alice, bob)
	hello := contentSend(t, "send")(alice.b.Send(ctx, gid, "hello", nil))
	groupsWait(t, "bob has hello", func() bool { _, ok := contentMessage(t, bob, gid, hello); return ok })
	if _, err := bob.b.Messages(ctx, MessagesQuery{Group: gid, UnreadOnly: true, MarkRead: true}); err != nil {
		t.Fatal(err)
	}
	reply := contentSend(t, "send")(bob.b.Send(ctx, gid, "read it", nil))
	groupsWait(t, "alice has bob's message", func() bool { _, ok := contentMessage(t, alice, gid, reply); return ok })
	if m, _ := contentMessage(t, alice, gid, hello); len(m.Receipts) != 0 {
		t.Fatalf("bob sent receipts with receipts off: %+v", m.Receipts)
	}
	groupsWait(t, "bob sees alice's delivery receipt", func() bool {
		m, _ := contentMessage(t, bob, gid, reply)
		return len(m.Receipts) == 1 && bytes.Equal(m.Receipts[0].Member, alice.id)
	})
}

// A waiting message moved to a recovered group's successor is sent there
// as what it was: reply, reaction, timer or text, with its time and
// expiry.
func TestContentResent(t *testing.T) {
	ref := bytes.Repeat([]byte{4}, 16)
	at, exp := time.Unix(1700000000, 0), time.Unix(1800000000, 0)
	for _, tc := range []struct {
		m    store.Message
		kind content.Kind
	}{
		{store.Message{Kind: store.KindReply, Ref: ref, Text: "yes"}, content.KindText},
		{store.Message{Kind: store.KindReaction, Ref: ref, Text: "👍"}, content.KindReaction},
		{store.Message{Kind: store.KindTimer, Text: "60"}, content.KindTimer},
		{store.Message{Text: "plain", ExpiresAt: exp}, content.KindText},
	} {
		tc.m.SentAt = at
		b, err := appendContent(resent(tc.m), bytes.Repeat([]byte{1}, 32))
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := parseContent(b)
		if err != nil || m.Kind() != tc.kind || !m.SentAt.Equal(at) {
			t.Fatalf("%+v: %+v %v", tc.m, m, err)
		}
		switch tc.m.Kind {
		case store.KindReply, store.KindReaction:
			if !bytes.Equal(m.InReplyTo, ref) || m.Text() != tc.m.Text {
				t.Errorf("%+v: %+v", tc.m, m)
			}
		case store.KindTimer:
			if *m.Timer != 60 {
				t.Errorf("timer %d", *m.Timer)
			}
		default:
			if m.Expires == nil || m.Expires.Relative || int64(m.Expires.Seconds) != exp.Unix() {
				t.Errorf("expiry %+v", m.Expires)
			}
		}
	}
}
