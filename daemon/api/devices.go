package api

import (
	"errors"
	"time"

	"context"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/internal/link"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// deviceStatus maps the device calls' errors, then the common ones.
func deviceStatus(err error) error {
	code := codes.Unknown
	switch {
	case err == nil:
		return nil
	case errors.Is(err, backend.ErrNotPrimaryDevice), errors.Is(err, backend.ErrRevokeSelf), errors.Is(err, backend.ErrIdentityPresent),
		errors.Is(err, backend.ErrTooManyDevices):
		code = codes.FailedPrecondition
	case errors.Is(err, backend.ErrDeviceNotFound):
		code = codes.NotFound
	case errors.Is(err, backend.ErrAmbiguousDevice), errors.Is(err, link.ErrCode):
		code = codes.InvalidArgument
	case errors.Is(err, link.ErrSealed), errors.Is(err, link.ErrWrongUser), errors.Is(err, link.ErrRequest), errors.Is(err, link.ErrMalformed):
		code = codes.PermissionDenied
	case errors.Is(err, backend.ErrLinkRefused):
		code = codes.PermissionDenied
	case errors.Is(err, backend.ErrLink):
		code = codes.Aborted
	}
	if code == codes.Unknown {
		return toStatus(err)
	}
	return status.Error(code, err.Error())
}

func devicePB(d backend.DeviceEntry) *daemonv1.Device {
	return &daemonv1.Device{Key: backend.FormatKey(d.Key), Name: d.Name, ThisDevice: d.This}
}

// Link implements the Link call.
func (s *Server) Link(req *daemonv1.LinkRequest, stream grpc.ServerStreamingServer[daemonv1.LinkProgress]) error {
	var timeout time.Duration
	if req.GetTimeout() != nil {
		timeout = req.GetTimeout().AsDuration()
	}
	res, err := s.b.Link(stream.Context(), timeout, func(st backend.LinkStep) error {
		m := &daemonv1.LinkProgress{}
		if st.Code != "" {
			m.Code, m.Expires = st.Code, ts(st.Expires)
		}
		if st.Device != nil {
			m.Device = devicePB(*st.Device)
		}
		if st.Request != nil {
			return s.confirmLink(stream.Context(), *st.Request, func() error {
				return stream.Send(&daemonv1.LinkProgress{Request: devicePB(*st.Request)})
			})
		}
		return stream.Send(m)
	})
	if err != nil {
		return deviceStatus(err)
	}
	return stream.Send(&daemonv1.LinkProgress{Done: true, Device: devicePB(res.Device), GroupsAdded: uint32(res.GroupsAdded), GroupsFailed: res.GroupsFailed})
}

// AcceptLink implements the AcceptLink call.
func (s *Server) AcceptLink(ctx context.Context, req *daemonv1.AcceptLinkRequest) (*daemonv1.AcceptLinkResponse, error) {
	var timeout time.Duration
	if req.GetTimeout() != nil {
		timeout = req.GetTimeout().AsDuration()
	}
	r, err := s.b.AcceptLink(ctx, req.GetCode(), req.GetName(), timeout)
	if err != nil {
		return nil, deviceStatus(err)
	}
	return &daemonv1.AcceptLinkResponse{Identity: backend.FormatKey(r.User), Device: backend.FormatKey(r.Device),
		Contacts: uint32(r.Contacts), Groups: uint32(r.Groups)}, nil
}

// Devices implements the Devices call.
func (s *Server) Devices(ctx context.Context, _ *daemonv1.DevicesRequest) (*daemonv1.DevicesResponse, error) {
	d, err := s.b.Devices(ctx)
	if err != nil {
		return nil, deviceStatus(err)
	}
	out := &daemonv1.DevicesResponse{Identity: backend.FormatKey(d.User), Version: d.Version, Primary: d.Primary}
	for _, e := range d.Devices {
		out.Devices = append(out.Devices, devicePB(e))
	}
	return out, nil
}

// RevokeDevice implements the RevokeDevice call.
func (s *Server) RevokeDevice(ctx context.Context, req *daemonv1.RevokeDeviceRequest) (*daemonv1.RevokeDeviceResponse, error) {
	r, err := s.b.RevokeDevice(ctx, req.GetDevice())
	if err != nil && (r == nil || !errors.Is(err, backend.ErrRevokeIncomplete)) {
		return nil, deviceStatus(err)
	}
	// Incomplete: the device is out of the list, and GroupsFailed names
	// the groups it is still in (revoking it again completes them).
	return &daemonv1.RevokeDeviceResponse{Version: r.Version, Device: backend.FormatKey(r.Device), Groups: uint32(r.Groups), GroupsFailed: r.GroupsFailed}, nil
}
