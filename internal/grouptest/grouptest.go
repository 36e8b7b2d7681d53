// Package grouptest forms real MLS groups of node clients for tests of the
// node and its clients: each Member is an identity (its Ed25519 key is the
// BasicCredential, the signature key and the queue address, as in qpd), its
// connection and its MLS state. Handshake messages are PublicMessages, as
// the node requires.
//
// It also forges what a hostile member could send: a commit re-signed by
// another key, a commit for another epoch, a commit with a given proposal
// list.
package grouptest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/node/client"
)

// Suite is the cipher suite of the groups.
const Suite = mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

// Config is the MLS configuration of the groups' members.
var Config = mls.Config{PublicHandshake: true}

// Member is one participant.
type Member struct {
	Pub    ed25519.PublicKey
	Priv   ed25519.PrivateKey
	Signer *mls.Signer
	Conn   *client.Client // set by the caller
	Group  *mls.Group     // once in a group
}

// NewMember makes a fresh identity.
func NewMember(t testing.TB) *Member {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return MemberOf(priv)
}

// MemberOf is the member of identity priv.
func MemberOf(priv ed25519.PrivateKey) *Member {
	pub := priv.Public().(ed25519.PublicKey)
	return &Member{Pub: pub, Priv: priv,
		Signer: &mls.Signer{Credential: mls.NewBasicCredential(pub), SignaturePub: pub, SignaturePriv: priv.Seed()}}
}

// KeyPackage makes a KeyPackage of m (its private half is dropped: for a
// member that never joins).
func (m *Member) KeyPackage(t testing.TB) *mls.KeyPackage {
	t.Helper()
	kp, _, err := mls.GenerateKeyPackage(Suite, m.Signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// Create makes m the only member of a new group and registers it at the
// node; it returns the group id.
func (m *Member) Create(t testing.TB) []byte {
	t.Helper()
	g, err := mls.CreateGroup(Suite, nil, m.Signer, &mls.CreateOptions{Config: Config})
	if err != nil {
		t.Fatal(err)
	}
	m.Group = g
	gi, err := g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Conn.CreateGroup(ctx(t), gi); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	return g.GroupID()
}

// Add has m add joiners in one commit, submitted to the node and merged;
// the joiners join from the Welcome as they receive it.
func (m *Member) Add(t testing.TB, joiners ...*Member) client.CommitResult {
	t.Helper()
	var kps []*mls.KeyPackage
	privs := make([]*mls.KeyPackagePrivate, len(joiners))
	for i, j := range joiners {
		kp, priv, err := mls.GenerateKeyPackage(Suite, j.Signer, nil)
		if err != nil {
			t.Fatal(err)
		}
		kps, privs[i] = append(kps, kp), priv
	}
	res, err := m.Group.AddMembers(kps, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := m.Submit(t, res)
	for i, j := range joiners {
		w := j.Next(t, "the Welcome")
		if !bytes.Equal(w, res.Welcome) {
			t.Fatalf("joiner %d got %d bytes, not the Welcome", i, len(w))
		}
		if j.Group, err = mls.JoinFromWelcome(w, privs[i], &mls.JoinOptions{Config: Config}); err != nil {
			t.Fatalf("JoinFromWelcome: %v", err)
		}
	}
	return out
}

// Submit sends m's pending commit res to the node and merges it once
// accepted.
func (m *Member) Submit(t testing.TB, res *mls.CommitResult) client.CommitResult {
	t.Helper()
	out, err := m.Conn.SubmitCommit(ctx(t), client.CommitRequest{Message: res.Message, Welcome: res.Welcome})
	if err != nil {
		t.Fatalf("SubmitCommit: %v", err)
	}
	if _, err := m.Group.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Next receives, acks and returns the next message of m's queue, failing
// the test if there is none. what names it in the failure.
func (m *Member) Next(t testing.TB, what string) []byte {
	t.Helper()
	e := m.NextEnvelope(t, what)
	return e.Payload
}

// NextEnvelope is Next returning the whole envelope.
func (m *Member) NextEnvelope(t testing.TB, what string) client.Envelope {
	t.Helper()
	envs, err := m.Conn.Receive(ctx(t), m.Pub, 0, 1)
	if err != nil {
		t.Fatalf("receive %s: %v", what, err)
	}
	if len(envs) != 1 {
		t.Fatalf("%x has no message; want %s", m.Pub[:4], what)
	}
	if _, err := m.Conn.Ack(ctx(t), m.Pub, envs[0].Seq); err != nil {
		t.Fatal(err)
	}
	return envs[0]
}

// WaitEnvelope waits up to 20 s for m's next envelope that is not a node
// notice (skipping and acking those), acks it and returns it.
func (m *Member) WaitEnvelope(t testing.TB, what string) client.Envelope {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		envs, err := m.Conn.Receive(ctx(t), m.Pub, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) == 1 {
			if _, err := m.Conn.Ack(ctx(t), m.Pub, envs[0].Seq); err != nil {
				t.Fatal(err)
			}
			if !client.IsNodeNotice(envs[0]) {
				return envs[0]
			}
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s for %x", what, m.Pub[:4])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Empty fails the test if m's queue holds a message.
func (m *Member) Empty(t testing.TB) {
	t.Helper()
	envs, err := m.Conn.Receive(ctx(t), m.Pub, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) > 0 {
		t.Fatalf("%x has %d-byte message from %x, want none", m.Pub[:4], len(envs[0].Payload), envs[0].Sender[:4])
	}
}

// Apply has m process msg (the next message it received) as a member.
func (m *Member) Apply(t testing.TB, msg []byte) *mls.Received {
	t.Helper()
	r, err := m.Group.ProcessMessage(msg)
	if err != nil {
		t.Fatalf("%x ProcessMessage: %v", m.Pub[:4], err)
	}
	return r
}

// Form makes members[0] create a group and add the others in one commit;
// every member's queue is empty afterwards. It returns the group id.
func Form(t testing.TB, members ...*Member) []byte {
	t.Helper()
	id := members[0].Create(t)
	if len(members) > 1 {
		members[0].Add(t, members[1:]...)
	}
	return id
}

// Resign re-signs the content of the PublicMessage msg as leaf of sigPriv's
// owner, after mutate (if not nil) changed it, with gc as the group
// context. The membership tag is zero: a delivery service cannot check it.
func Resign(t testing.TB, msg []byte, sigPriv []byte, gc mls.GroupContext, mutate func(*mls.FramedContent)) []byte {
	t.Helper()
	m, err := mls.ParseMLSMessage(msg)
	if err != nil || m.WireFormat != mls.WireFormatPublicMessage {
		t.Fatalf("Resign: not a PublicMessage: %v", err)
	}
	fc := m.PublicMessage.Content
	if mutate != nil {
		mutate(&fc)
	}
	s, err := mls.LookupSuite(gc.CipherSuite)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := mls.SignFramedContent(s, sigPriv, mls.WireFormatPublicMessage, &fc, &gc)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = m.PublicMessage.Auth.ConfirmationTag
	pm := &mls.PublicMessage{Content: ac.Content, Auth: ac.Auth, MembershipTag: make([]byte, s.HashSize())}
	if fc.Sender.Type != mls.SenderMember {
		pm.MembershipTag = nil
	}
	return (&mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatPublicMessage, PublicMessage: pm}).Marshal()
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// GarbagePathCommit is a commit by m (an external resync of its own leaf,
// made with cfg: a delivery service allows it, and it carries no
// membership tag, so every member reads past the framing to the path)
// that is validly signed and valid on the public tree, but whose encrypted
// path secrets are corrupted: only the members can tell.
func GarbagePathCommit(t testing.TB, m *Member, cfg mls.Config) []byte {
	t.Helper()
	gi, err := m.Group.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	_, resync, err := mls.JoinExternal(gi, m.Signer, &mls.ExternalJoinOptions{Resync: true, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return Resign(t, resync, m.Signer.SignaturePriv, m.Group.GroupContext(), func(fc *mls.FramedContent) {
		for i := range fc.Commit.Path.Nodes {
			for j := range fc.Commit.Path.Nodes[i].EncryptedPathSecret {
				c := &fc.Commit.Path.Nodes[i].EncryptedPathSecret[j]
				c.Ciphertext = bytes.Clone(c.Ciphertext)
				c.Ciphertext[0] ^= 1
			}
		}
	})
}
