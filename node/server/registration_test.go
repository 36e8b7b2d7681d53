package server_test

import (
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/pow"
	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// TestRegistrationToken plays throwaway identities against a node whose
// policy is token: without a redeemed token they upload nothing and
// enqueue nothing; a token serves as many identities as its uses, and an
// expired one none; nobody enqueues to a key that never registered.
func TestRegistrationToken(t *testing.T) {
	n := startTestNode(t, server.Config{Registration: server.RegistrationToken}, store.Limits{})
	ctx := testCtx(t)
	a, b, c := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	ca, cb, cc := n.dial(t, a.priv), n.dial(t, b.priv), n.dial(t, c.priv)

	_, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, 1), false)
	wantErr(t, "upload before registering", err, client.ErrNotRegistered)
	_, _, err = ca.Enqueue(ctx, a.pub, []byte("x"), nil)
	wantErr(t, "enqueue before registering", err, client.ErrNotRegistered)
	wantErr(t, "register without a token", ca.Register(ctx, ""), client.ErrNotRegistered)
	wantErr(t, "register with a made-up token", ca.Register(ctx, "qpt_madeup"), client.ErrBadToken)

	secret, hash := store.NewToken()
	if err := n.store.CreateToken(ctx, hash, 2, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ca.Register(ctx, secret); err != nil {
		t.Fatalf("register with the token: %v", err)
	}
	if err := ca.Register(ctx, secret); err != nil {
		t.Fatalf("registering again: %v", err)
	}
	if _, err := ca.UploadKeyPackage(ctx, a.pub, testKeyPackage(a.pub, 1), false); err != nil {
		t.Fatalf("upload after registering: %v", err)
	}
	_, _, err = ca.Enqueue(ctx, b.pub, []byte("x"), nil)
	wantErr(t, "enqueue to an unregistered key", err, client.ErrUnknownRecipient)
	if err := cb.Register(ctx, secret); err != nil {
		t.Fatalf("second use of the token: %v", err)
	}
	if _, _, err := ca.Enqueue(ctx, b.pub, []byte("hello b"), nil); err != nil {
		t.Fatalf("enqueue to a registered key: %v", err)
	}
	wantErr(t, "third use of a two-use token", cc.Register(ctx, secret), client.ErrBadToken)

	old, oldHash := store.NewToken()
	if err := n.store.CreateToken(ctx, oldHash, 5, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "expired token", cc.Register(ctx, old), client.ErrBadToken)
	_, _, err = cc.Enqueue(ctx, a.pub, []byte("x"), nil)
	wantErr(t, "enqueue after refused tokens", err, client.ErrNotRegistered)
	_, err = cc.SubmitCommit(ctx, client.CommitRequest{Message: grpPublic([]byte("g-unregistered..."), 0, grpContentCommit, "c"), Recipients: [][]byte{a.pub}})
	wantErr(t, "commit before registering", err, client.ErrNotRegistered)
}

// TestRegistrationProofOfWork: under the open policy an identity registers
// with a proof bound to its connection's challenge; a proof for another
// challenge is refused.
func TestRegistrationProofOfWork(t *testing.T) {
	n := startTestNode(t, server.Config{Registration: server.RegistrationOpen, PowDifficulty: 10}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	reg, err := cb.Registration(ctx)
	if err != nil || reg.Policy != "open" || reg.Registered || reg.Difficulty != 10 || len(reg.Challenge) != 32 {
		t.Fatalf("Registration = %+v, %v", reg, err)
	}
	_, _, err = cb.Enqueue(ctx, b.pub, []byte("x"), nil)
	wantErr(t, "enqueue before registering", err, client.ErrNotRegistered)
	if err := ca.Register(ctx, ""); err != nil {
		t.Fatalf("register with a proof of work: %v", err)
	}
	if reg, err := ca.Registration(ctx); err != nil || !reg.Registered {
		t.Fatalf("after registering: %+v, %v", reg, err)
	}
	if _, _, err := ca.Enqueue(ctx, a.pub, []byte("x"), nil); err != nil {
		t.Fatalf("enqueue after registering: %v", err)
	}
	// A proof for another connection's challenge does not count, nor one
	// for another identity.
	nonce, err := pow.Solve(ctx, reg.Challenge, b.pub, 10)
	if err != nil {
		t.Fatal(err)
	}
	cb2 := n.dial(t, b.priv)
	wantErr(t, "a proof for another connection", cb2.RegisterProof(ctx, nonce), client.ErrBadToken)
	c := newTestIdentity(t)
	cc := n.dial(t, c.priv)
	creg, _ := cc.Registration(ctx)
	nonce, _ = pow.Solve(ctx, creg.Challenge, b.pub, 10)
	wantErr(t, "a proof for another identity", cc.RegisterProof(ctx, nonce), client.ErrBadToken)
	nonce, _ = pow.Solve(ctx, reg.Challenge, b.pub, 10)
	if err := cb.RegisterProof(ctx, nonce); err != nil {
		t.Fatalf("the right proof: %v", err)
	}
	closed := startTestNode(t, server.Config{Registration: server.RegistrationClosed}, store.Limits{})
	wantErr(t, "register at a closed node", closed.dial(t, b.priv).Register(ctx, ""), client.ErrNotRegistered)
}
