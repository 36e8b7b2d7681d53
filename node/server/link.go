package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/schemas/devices"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// This file is the link rendezvous: the slots through which a new device
// and a device of the user (the opener) exchange one sealed request and
// one sealed response (package internal/link). The node sees a slot id
// derived from the link code and two ciphertexts; it can neither read
// them nor guess the code. A slot lives in the store (nodes sharing a
// database agree on it) for Config.LinkTTL, holds each box once, and an
// identity has at most Config.MaxLinkSlots open.
//
// Box 0 (request) is written by any authenticated connection (the new
// device is not registered yet) and read only by the opener; box 1
// (response) is written only by the opener and read by whoever knows the
// slot. A second request is refused, so whoever comes first with the code
// is the one the opener sees, and the opener checks its signature.

// Defaults of the link fields of Config.
const (
	DefaultLinkTTL        = 10 * time.Minute
	DefaultMaxLinkSlots   = 4
	DefaultMaxLinkPayload = 64 << 10
)

func (cfg *Config) linkDefaults() {
	setDefault(&cfg.LinkTTL, DefaultLinkTTL)
	setDefault(&cfg.MaxLinkSlots, DefaultMaxLinkSlots)
	setDefault(&cfg.MaxLinkPayload, DefaultMaxLinkPayload)
}

func checkSlotArg(method string, slot []byte) error {
	if len(slot) != store.SlotIDSize {
		return fail(nodecp.ErrorCode_invalidArgument, "%s: slot has %d bytes, want %d", method, len(slot), store.SlotIDSize)
	}
	return nil
}

func checkBoxArg(method string, box uint8) error {
	if box != store.BoxRequest && box != store.BoxResponse {
		return fail(nodecp.ErrorCode_invalidArgument, "%s: box %d, want 0 (request) or 1 (response)", method, box)
	}
	return nil
}

// linkStoreError maps the store's slot errors.
func (s *session) linkStoreError(method string, err error) error {
	switch {
	case errors.Is(err, store.ErrNoSlot):
		return fail(nodecp.ErrorCode_invalidArgument, "%s: no such link slot (never opened, closed or expired)", method)
	case errors.Is(err, store.ErrSlotExists):
		return fail(nodecp.ErrorCode_invalidArgument, "%s: that link slot is open already", method)
	case errors.Is(err, store.ErrBoxFull):
		return fail(nodecp.ErrorCode_unauthorized, "%s: that box of the link slot is filled already", method)
	case errors.Is(err, store.ErrLimit):
		return fail(nodecp.ErrorCode_limit, "%s: at most %d open link slots per identity", method, s.srv.cfg.MaxLinkSlots)
	}
	return s.storeError(method, err)
}

func (s *session) isOpener(sl store.LinkSlot) bool {
	return subtle.ConstantTimeCompare(sl.Opener, s.identity) == 1
}

func (s *session) LinkOpen(ctx context.Context, call devices.DeviceService_linkOpen) error {
	const method = "linkOpen"
	return s.serve(method, func() error {
		if err := s.registered(ctx, method); err != nil {
			return err
		}
		slot, _ := call.Args().Slot()
		if err := checkSlotArg(method, slot); err != nil {
			return err
		}
		if err := s.admitDisk(ctx, method, deviceRowBytes, false); err != nil {
			return err
		}
		if err := s.srv.cfg.Store.OpenSlot(ctx, slot, s.identity, time.Now().Add(s.srv.cfg.LinkTTL), s.srv.cfg.MaxLinkSlots); err != nil {
			return s.linkStoreError(method, err)
		}
		return nil
	})
}

func (s *session) LinkPut(ctx context.Context, call devices.DeviceService_linkPut) error {
	const method = "linkPut"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		args := call.Args()
		slot, _ := args.Slot()
		if err := checkSlotArg(method, slot); err != nil {
			return err
		}
		box := args.Box()
		if err := checkBoxArg(method, box); err != nil {
			return err
		}
		payload, _ := args.Payload()
		if len(payload) > s.srv.cfg.MaxLinkPayload {
			return fail(nodecp.ErrorCode_tooLarge, "%s: payload has %d bytes, limit %d", method, len(payload), s.srv.cfg.MaxLinkPayload)
		}
		if len(payload) == 0 {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: empty payload", method)
		}
		if err := s.admitDisk(ctx, method, len(payload), false); err != nil {
			return err
		}
		sl, err := s.srv.cfg.Store.Slot(ctx, slot)
		if err != nil {
			return s.linkStoreError(method, err)
		}
		if box == store.BoxResponse && !s.isOpener(sl) {
			return fail(nodecp.ErrorCode_unauthorized, "%s: only the slot's opener puts the response", method)
		}
		if err := s.srv.cfg.Store.PutSlotBox(ctx, slot, int(box), payload); err != nil {
			return s.linkStoreError(method, err)
		}
		return nil
	})
}

func (s *session) LinkGet(ctx context.Context, call devices.DeviceService_linkGet) error {
	const method = "linkGet"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		args := call.Args()
		slot, _ := args.Slot()
		if err := checkSlotArg(method, slot); err != nil {
			return err
		}
		box := args.Box()
		if err := checkBoxArg(method, box); err != nil {
			return err
		}
		sl, err := s.srv.cfg.Store.Slot(ctx, slot)
		if err != nil {
			return s.linkStoreError(method, err)
		}
		payload := sl.Response
		if box == store.BoxRequest {
			if !s.isOpener(sl) {
				return fail(nodecp.ErrorCode_unauthorized, "%s: only the slot's opener reads the request", method)
			}
			payload = sl.Request
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		return res.SetPayload(payload)
	})
}

func (s *session) LinkClose(ctx context.Context, call devices.DeviceService_linkClose) error {
	const method = "linkClose"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		slot, _ := call.Args().Slot()
		if err := checkSlotArg(method, slot); err != nil {
			return err
		}
		if err := s.srv.cfg.Store.CloseSlot(ctx, slot, s.identity); err != nil {
			return s.linkStoreError(method, err)
		}
		return nil
	})
}

// expireSlots removes expired link slots (from the expiry sweep).
func (s *Server) expireSlots(ctx context.Context) {
	n, err := s.cfg.Store.ExpireSlots(ctx, time.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("expiring link slots failed", "err", err)
	case n > 0:
		s.log.Debug("expired link slots", "count", n)
	}
}
