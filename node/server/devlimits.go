package server

import (
	"context"

	"golang.org/x/time/rate"

	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// Each published list is a stored row and may revoke devices for ever,
// so a user's lists are paced like the node's other calls: a burst, then
// one a minute. The bucket is the user's, whichever connection carries
// the list; a replayed list is refused by its version before it is
// charged, so nobody but the user can drain it.
const (
	DefaultDeviceListRate  = rate.Limit(1.0 / 60)
	DefaultDeviceListBurst = 8
	// DefaultMaxRevokedDevices: revocations are kept for ever, so a user
	// who drops devices list after list is capped.
	DefaultMaxRevokedDevices = 256
)

// deviceRowBytes is what the disk budget charges for a stored row of a
// device (in a list, a revocation, a link slot) besides its payload.
const deviceRowBytes = 128

func (cfg *Config) deviceDefaults() {
	setDefault(&cfg.DeviceListRate, DefaultDeviceListRate)
	setDefault(&cfg.DeviceListBurst, DefaultDeviceListBurst)
	setDefault(&cfg.MaxRevokedDevices, DefaultMaxRevokedDevices)
}

// allowList charges one published list to user's bucket.
func (s *Server) allowList(user []byte) bool {
	return s.listPace.get(user).Allow()
}

// fetchCharge is what a fetchUserKeyPackages of n devices costs up
// front: one per device, but never more than the bucket holds, else a
// user with more devices than the burst could never be fetched.
func (s *Server) fetchCharge(n int) int {
	return max(1, min(n, s.cfg.FetchBurst))
}

// hasOwnKeyPackages refuses d as a new device when the directory holds
// KeyPackages under d (in any suite): only d itself can have put them
// there (a device's x509 packages are taken only once it is listed), so d
// is an established identity, registered or not (RegistrationNone keeps
// no registry), and listing then dropping it would revoke a stranger.
func (s *session) hasOwnKeyPackages(ctx context.Context, method string, d []byte) error {
	for _, suite := range s.srv.cfg.KeyPackageSuites {
		c, err := s.srv.cfg.Store.CountKeyPackages(ctx, directoryKey(d, suite))
		if err != nil {
			return s.storeError(method, err)
		}
		if c.Remaining > 0 || c.LastResort {
			return fail(nodecp.ErrorCode_unauthorized, "%s: %x has KeyPackages of its own at this node, it is not a new device", method, d)
		}
	}
	return nil
}

// mayRevoke refuses a list that would take user's revoked devices past
// MaxRevokedDevices by revoking n more.
func (s *session) mayRevoke(ctx context.Context, method string, user []byte, n int) error {
	if n == 0 {
		return nil
	}
	have, err := s.srv.cfg.Store.RevokedCount(ctx, user)
	if err != nil {
		return s.storeError(method, err)
	}
	if max := s.srv.cfg.MaxRevokedDevices; have+n > max {
		s.srv.cfg.Metrics.refused("revokedDevices")
		return fail(nodecp.ErrorCode_limit, "%s: user %x has revoked %d devices; revoking %d more would pass the limit of %d", method, user, have, n, max)
	}
	return nil
}
