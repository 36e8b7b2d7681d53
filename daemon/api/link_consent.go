package api

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/backend"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// This file is the primary's consent to a link: Link shows the request
// and waits; ConfirmLink answers it.

// linkWaits are the link requests waiting for an answer, by device key
// (hex).
type linkWaits struct {
	mu sync.Mutex
	m  map[string]chan bool
}

func (w *linkWaits) open(key string) (chan bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]chan bool{}
	}
	if _, ok := w.m[key]; ok {
		return nil, fmt.Errorf("%w: device %s is being asked about already", backend.ErrLink, key)
	}
	ch := make(chan bool, 1)
	w.m[key] = ch
	return ch, nil
}

func (w *linkWaits) close(key string) {
	w.mu.Lock()
	delete(w.m, key)
	w.mu.Unlock()
}

// answer delivers yes to the Link waiting for key; false when none waits.
func (w *linkWaits) answer(key string, yes bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.m[key]
	if !ok {
		return false
	}
	delete(w.m, key)
	ch <- yes
	return true
}

// errNoAnswer: the person did not answer in time.
var errNoAnswer = errors.New("no answer")

// linkConsentWait is backend.LinkConsentWait (a variable for tests).
var linkConsentWait = backend.LinkConsentWait

// confirmLink shows the request (send) and waits for ConfirmLink, at most
// backend.LinkConsentWait; anything but a yes is an error, which refuses.
func (s *Server) confirmLink(ctx context.Context, d backend.DeviceEntry, send func() error) error {
	key := backend.FormatKey(d.Key)
	ch, err := s.links.open(key)
	if err != nil {
		return err
	}
	defer s.links.close(key)
	if err := send(); err != nil {
		return err
	}
	t := time.NewTimer(linkConsentWait)
	defer t.Stop()
	select {
	case yes := <-ch:
		if !yes {
			return fmt.Errorf("%w: the person said no", backend.ErrLinkRefused)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: %w within %v", backend.ErrLinkRefused, errNoAnswer, linkConsentWait)
	case <-ctx.Done():
		return fmt.Errorf("%w: the call ended: %w", backend.ErrLinkRefused, ctx.Err())
	}
}

// ConfirmLink implements the ConfirmLink call.
func (s *Server) ConfirmLink(_ context.Context, req *daemonv1.ConfirmLinkRequest) (*daemonv1.ConfirmLinkResponse, error) {
	key := strings.ToLower(strings.TrimSpace(req.GetDevice()))
	if len(key) > 2*32 {
		return nil, status.Errorf(codes.InvalidArgument, "device key of %d characters", len(key))
	}
	if !s.links.answer(key, req.GetAccept()) {
		return nil, status.Errorf(codes.NotFound, "no link request from device %q waits for an answer", key)
	}
	return &daemonv1.ConfirmLinkResponse{}, nil
}

// AcceptLinkSteps implements the AcceptLinkSteps call.
func (s *Server) AcceptLinkSteps(req *daemonv1.AcceptLinkRequest, stream grpc.ServerStreamingServer[daemonv1.AcceptLinkProgress]) error {
	var timeout time.Duration
	if req.GetTimeout() != nil {
		timeout = req.GetTimeout().AsDuration()
	}
	var sendErr error
	r, err := s.b.AcceptLinkShowing(stream.Context(), req.GetCode(), req.GetName(), timeout, func(d ed25519.PublicKey) {
		sendErr = stream.Send(&daemonv1.AcceptLinkProgress{Device: backend.FormatKey(d)})
	})
	if err != nil {
		return deviceStatus(err)
	}
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&daemonv1.AcceptLinkProgress{Done: &daemonv1.AcceptLinkResponse{Identity: backend.FormatKey(r.User), Device: backend.FormatKey(r.Device),
		Contacts: uint32(r.Contacts), Groups: uint32(r.Groups)}})
}
