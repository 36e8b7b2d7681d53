package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/backend"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// A link request waits for ConfirmLink: yes links, no and silence refuse,
// an answer for a device nobody asks about is NOT_FOUND, and one device
// is asked about once at a time.
func TestConfirmLink(t *testing.T) {
	old := linkConsentWait
	linkConsentWait = 300 * time.Millisecond
	t.Cleanup(func() { linkConsentWait = old })
	s := &Server{}
	ctx := context.Background()
	key, _, _ := ed25519.GenerateKey(rand.Reader)
	d := backend.DeviceEntry{Key: key, Name: "laptop"}
	hex := backend.FormatKey(key)

	ask := func(answer *bool) error {
		done := make(chan error, 1)
		shown := make(chan struct{})
		go func() { done <- s.confirmLink(ctx, d, func() error { close(shown); return nil }) }()
		<-shown
		if answer != nil {
			if _, err := s.ConfirmLink(ctx, &daemonv1.ConfirmLinkRequest{Device: hex, Accept: *answer}); err != nil {
				t.Fatalf("ConfirmLink: %v", err)
			}
		}
		return <-done
	}
	yes, no := true, false
	if err := ask(&yes); err != nil {
		t.Fatalf("yes: %v", err)
	}
	if err := ask(&no); !errors.Is(err, backend.ErrLinkRefused) {
		t.Fatalf("no: %v, want ErrLinkRefused", err)
	}
	if err := ask(nil); !errors.Is(err, backend.ErrLinkRefused) || !errors.Is(err, errNoAnswer) {
		t.Fatalf("no answer: %v, want ErrLinkRefused (no answer)", err)
	}
	if _, err := s.ConfirmLink(ctx, &daemonv1.ConfirmLinkRequest{Device: hex, Accept: true}); status.Code(err) != codes.NotFound {
		t.Fatalf("an answer nobody waits for: %v, want NotFound", err)
	}
	// Asked about already: a second Link for the same device is refused.
	shown := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.confirmLink(ctx, d, func() error { close(shown); return nil }) }()
	<-shown
	if err := s.confirmLink(ctx, d, func() error { return nil }); !errors.Is(err, backend.ErrLink) {
		t.Fatalf("the same device asked about twice: %v", err)
	}
	<-done
}
