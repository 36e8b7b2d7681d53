package server

import (
	"context"

	"github.com/quicproquo/quicproquo/schemas/devices"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

func (s *session) PublishDevices(ctx context.Context, call devices.DeviceService_publishDevices) error {
	return fail(nodecp.ErrorCode_internal, "publishDevices: not implemented")
}

func (s *session) FetchDevices(ctx context.Context, call devices.DeviceService_fetchDevices) error {
	return fail(nodecp.ErrorCode_internal, "fetchDevices: not implemented")
}

func (s *session) FetchUserKeyPackages(ctx context.Context, call devices.DeviceService_fetchUserKeyPackages) error {
	return fail(nodecp.ErrorCode_internal, "fetchUserKeyPackages: not implemented")
}

func (s *session) LinkOpen(ctx context.Context, call devices.DeviceService_linkOpen) error {
	return fail(nodecp.ErrorCode_internal, "linkOpen: not implemented")
}

func (s *session) LinkPut(ctx context.Context, call devices.DeviceService_linkPut) error {
	return fail(nodecp.ErrorCode_internal, "linkPut: not implemented")
}

func (s *session) LinkGet(ctx context.Context, call devices.DeviceService_linkGet) error {
	return fail(nodecp.ErrorCode_internal, "linkGet: not implemented")
}

func (s *session) LinkClose(ctx context.Context, call devices.DeviceService_linkClose) error {
	return fail(nodecp.ErrorCode_internal, "linkClose: not implemented")
}
