package api

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/link"
)

// The device calls' refusals reach clients as codes that say what to do.
func TestDeviceStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{backend.ErrNotPrimaryDevice, codes.FailedPrecondition},
		{backend.ErrRevokeSelf, codes.FailedPrecondition},
		{backend.ErrIdentityPresent, codes.FailedPrecondition},
		{fmt.Errorf("%w: 00000000", backend.ErrDeviceNotFound), codes.NotFound},
		{fmt.Errorf("%w: %w", backend.ErrLink, link.ErrCode), codes.InvalidArgument},
		{fmt.Errorf("%w: %w", backend.ErrLink, link.ErrSealed), codes.PermissionDenied},
		{fmt.Errorf("%w: %w: %w", backend.ErrLink, link.ErrWrongUser, devid.ErrNotIssuedByUser), codes.PermissionDenied},
		{fmt.Errorf("%w: no answer", backend.ErrLink), codes.Aborted},
		{fmt.Errorf("%w: %w", backend.ErrLinkRefused, link.ErrRefused), codes.PermissionDenied},
		{fmt.Errorf("%w: dial", backend.ErrNotConnected), codes.Unavailable},
		{errors.New("disk"), codes.Internal},
	} {
		if got := status.Code(deviceStatus(c.err)); got != c.want {
			t.Errorf("%v: %v, want %v", c.err, got, c.want)
		}
	}
	if deviceStatus(nil) != nil {
		t.Error("nil error mapped")
	}
}
