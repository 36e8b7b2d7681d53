package server_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

func TestAuthorizationOtherIdentity(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)

	// b has a message and a package; a may enqueue to b and fetch b's
	// package, and nothing else of b's.
	if _, err := cb.UploadKeyPackage(ctx, b.pub, testKeyPackage(b.pub, 1), false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Enqueue(ctx, b.pub, []byte("for b"), nil); err != nil {
		t.Fatalf("enqueue to another identity: %v", err)
	}

	_, err := ca.Fetch(ctx, b.pub)
	wantErr(t, "fetch b's queue as a", err, client.ErrUnauthorized)
	_, err = ca.Receive(ctx, b.pub, 0, 0)
	wantErr(t, "receive b's queue as a", err, client.ErrUnauthorized)
	_, err = ca.Ack(ctx, b.pub, 10)
	wantErr(t, "ack b's queue as a", err, client.ErrUnauthorized)
	_, err = ca.Subscribe(ctx, b.pub, 0, func(context.Context, []client.Envelope) error { return nil })
	wantErr(t, "subscribe to b's queue as a", err, client.ErrUnauthorized)
	// Uploading for b is refused even with a package whose credential is b.
	_, err = ca.UploadKeyPackage(ctx, b.pub, testKeyPackage(b.pub, 2), false)
	wantErr(t, "upload for b as a", err, client.ErrUnauthorized)
	_, err = ca.KeyPackageCount(ctx, b.pub)
	wantErr(t, "count b's packages as a", err, client.ErrUnauthorized)

	// Nothing of b's changed.
	msgs, err := cb.Receive(ctx, b.pub, 0, 0)
	if err != nil || len(msgs) != 1 || string(msgs[0].Payload) != "for b" {
		t.Fatalf("b's queue after a's attempts: %+v %v", msgs, err)
	}
	cnt, err := cb.KeyPackageCount(ctx, b.pub)
	if err != nil || cnt.Remaining != 1 {
		t.Fatalf("b's packages after a's attempts: %+v %v", cnt, err)
	}
	kp, err := ca.FetchKeyPackage(ctx, b.pub)
	if err != nil || !bytes.Equal(kp, testKeyPackage(b.pub, 1)) {
		t.Fatalf("a fetching b's package: %v", err)
	}
}

func TestAuthorizationAnonymous(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	b := newTestIdentity(t)
	anon := n.dial(t, nil)
	if _, err := anon.Ping(ctx); err != nil {
		t.Fatalf("anonymous ping: %v", err)
	}
	calls := map[string]func() error{
		"enqueue": func() error { _, _, err := anon.Enqueue(ctx, b.pub, []byte("x"), nil); return err },
		"fetch":   func() error { _, err := anon.Fetch(ctx, b.pub); return err },
		"receive": func() error { _, err := anon.Receive(ctx, b.pub, 0, 0); return err },
		"ack":     func() error { _, err := anon.Ack(ctx, b.pub, 1); return err },
		"subscribe": func() error {
			_, err := anon.Subscribe(ctx, b.pub, 0, func(context.Context, []client.Envelope) error { return nil })
			return err
		},
		"uploadKeyPackage": func() error {
			_, err := anon.UploadKeyPackage(ctx, b.pub, testKeyPackage(b.pub, 1), false)
			return err
		},
		"fetchKeyPackage": func() error { _, err := anon.FetchKeyPackage(ctx, b.pub); return err },
		"keyPackageCount": func() error { _, err := anon.KeyPackageCount(ctx, b.pub); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantErr(t, name, call(), client.ErrUnauthorized)
		})
	}
	// Nothing was stored for b.
	if msgs, err := n.store.Receive(ctx, b.pub, 0, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("b's queue after anonymous calls: %d, %v", len(msgs), err)
	}
}
