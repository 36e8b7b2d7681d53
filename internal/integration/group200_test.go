package integration

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	"github.com/quicproquo/quicproquo/node/client"
)

const suite = mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

// member is one participant: an identity, its connection to the node and,
// once joined, its group state.
type member struct {
	pub    ed25519.PublicKey
	signer *mls.Signer
	conn   *client.Client
	kpPriv *mls.KeyPackagePrivate
	group  *mls.Group
	cursor uint64
}

func newMember(t *testing.T, ctx context.Context, n *testnode.Node) *member {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.Dial(ctx, n.Addr, client.Config{Identity: priv, PinnedCert: n.CertDER, Logger: testnode.Logger()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Register(ctx, ""); err != nil {
		t.Fatalf("register: %v", err)
	}
	return &member{
		pub:    pub,
		signer: &mls.Signer{Credential: mls.NewBasicCredential(pub), SignaturePub: pub, SignaturePriv: priv.Seed()},
		conn:   conn,
	}
}

// receiveOne waits for the next envelope in m's queue, acks it and returns
// its payload. It is called from worker goroutines, so it returns errors
// instead of failing the test itself.
func (m *member) receiveOne(ctx context.Context) ([]byte, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		envs, err := m.conn.Receive(ctx, m.pub, m.cursor, 1)
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		if len(envs) == 1 {
			m.cursor = envs[0].Seq
			if _, err := m.conn.Ack(ctx, m.pub, m.cursor); err != nil {
				return nil, fmt.Errorf("ack: %w", err)
			}
			if client.IsNodeNotice(envs[0]) {
				continue // the node's note that the KeyPackage was the last
			}
			return envs[0].Payload, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no envelope within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parallel runs f for every member with a few workers and fails on the first error.
func parallel(t *testing.T, ms []*member, f func(m *member) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(ms))
	work := make(chan *member)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				if err := f(m); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, m := range ms {
		work <- m
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestGroup200 builds a 200-member group through a real node: one commit adds
// 199 members, all of them join from the Welcome the node fanned out, and one
// application message fanned out by the node reaches and decrypts at all 199.
func TestGroup200(t *testing.T) {
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")

	creator := newMember(t, ctx, node)
	others := make([]*member, n-1)
	for i := range others {
		others[i] = newMember(t, ctx, node)
	}

	// Every joiner publishes a KeyPackage, keeping its private half.
	parallel(t, others, func(m *member) error {
		kp, priv, err := mls.GenerateKeyPackage(suite, m.signer, nil)
		if err != nil {
			return err
		}
		m.kpPriv = priv
		_, err = m.conn.UploadKeyPackage(ctx, m.pub, kp.Marshal(), false)
		return err
	})

	// The creator fetches all 199 packages and adds them in one commit.
	g, err := mls.CreateGroup(suite, nil, creator.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	kps := make([]*mls.KeyPackage, len(others))
	welcomeTo := make([][]byte, len(others))
	for i, m := range others {
		raw, err := creator.conn.FetchKeyPackage(ctx, m.pub)
		if err != nil {
			t.Fatalf("fetch key package %d: %v", i, err)
		}
		if kps[i], err = mls.ParseKeyPackage(raw); err != nil {
			t.Fatalf("parse key package %d: %v", i, err)
		}
		welcomeTo[i] = m.pub
	}
	res, err := g.AddMembers(kps, nil)
	if err != nil {
		t.Fatalf("add 199: %v", err)
	}
	cr, err := creator.conn.SubmitCommit(ctx, client.CommitRequest{
		ClientMsgID:       []byte("add-199"),
		Message:           res.Message,
		Welcome:           res.Welcome,
		WelcomeRecipients: welcomeTo,
	})
	if err != nil {
		t.Fatalf("submit commit: %v", err)
	}
	if cr.Duplicate {
		t.Fatal("first submission reported as duplicate")
	}
	if _, err := g.MergePendingCommit(); err != nil {
		t.Fatalf("merge: %v", err)
	}
	if got := len(g.Members()); got != n {
		t.Fatalf("creator sees %d members, want %d", got, n)
	}

	// All 199 join from the Welcome the node delivered.
	parallel(t, others, func(m *member) error {
		welcome, err := m.receiveOne(ctx)
		if err != nil {
			return err
		}
		mg, err := mls.JoinFromWelcome(welcome, m.kpPriv, nil)
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		if mg.Epoch() != g.Epoch() || !bytes.Equal(mg.EpochAuthenticator(), g.EpochAuthenticator()) {
			return fmt.Errorf("joined at epoch %d with another epoch authenticator than the creator (epoch %d)", mg.Epoch(), g.Epoch())
		}
		m.group = mg
		return nil
	})

	// One application message, fanned out by the node to all 199.
	text := []byte("hello, two hundred")
	msg, err := g.Protect(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq, dup, err := creator.conn.FanOut(ctx, []byte("hello-1"), msg, welcomeTo)
	if err != nil || dup || seq == 0 {
		t.Fatalf("fan-out: seq %d duplicate %v err %v", seq, dup, err)
	}
	var mu sync.Mutex
	got := 0
	parallel(t, others, func(m *member) error {
		payload, err := m.receiveOne(ctx)
		if err != nil {
			return err
		}
		rcv, err := m.group.ProcessMessage(payload)
		if err != nil {
			return fmt.Errorf("process: %w", err)
		}
		if !bytes.Equal(rcv.Plaintext, text) {
			return fmt.Errorf("decrypted %q, want %q", rcv.Plaintext, text)
		}
		mu.Lock()
		got++
		mu.Unlock()
		return nil
	})
	if got != n-1 {
		t.Fatalf("%d members decrypted the message, want %d", got, n-1)
	}
}
