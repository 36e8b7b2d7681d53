package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/schemas/devices"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// This file is the node's side of devices. A user U publishes the signed
// list of its current devices (internal/devid DeviceList); the node keeps
// the newest, hands it out, and serves one KeyPackage per listed device.
// A device that leaves the list is revoked for ever: the store drops its
// queue and KeyPackages with the list that revokes it, every later call
// on a connection with its key fails with revoked, its open connections
// to this node are closed, and no view takes a leaf of it.
//
// Who may be listed: U itself, or a key that is nobody's identity yet (not
// registered on its own, not in another user's list, never revoked). A
// listed device counts as registered. Without the first condition a
// stranger could list someone else's key and then drop it, revoking it.
//
// Who may publish: any authenticated connection, for a registered user:
// U's signature is the authority (a device restored from the identity
// backup publishes with a new key that the node does not know yet).

// revocationRecheck is how long the node trusts that a key is not
// revoked before asking the store again (revocations through another node
// sharing the store reach this one within it). A revocation is permanent
// and is remembered without a limit of time.
const revocationRecheck = 2 * time.Second

// maxRevocationCache bounds the cache; past it the cache starts empty.
const maxRevocationCache = 1 << 16

type revocationEntry struct {
	revoked bool
	at      time.Time
}

// revocations caches which keys are revoked.
type revocations struct {
	mu    sync.Mutex
	known map[[store.IdentityKeySize]byte]revocationEntry
}

func (r *revocations) get(key []byte, now time.Time) (revoked, ok bool) {
	if len(key) != store.IdentityKeySize {
		return false, true // not a device key: nothing to revoke
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, found := r.known[[store.IdentityKeySize]byte(key)]
	if !found || (!e.revoked && now.Sub(e.at) > revocationRecheck) {
		return false, false
	}
	return e.revoked, true
}

func (r *revocations) put(key []byte, revoked bool, now time.Time) {
	if len(key) != store.IdentityKeySize {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil || len(r.known) >= maxRevocationCache {
		r.known = make(map[[store.IdentityKeySize]byte]revocationEntry)
	}
	// A lookup that read the store before a revocation committed must
	// not undo the revocation the node has already noted.
	if e, ok := r.known[[store.IdentityKeySize]byte(key)]; ok && e.revoked {
		return
	}
	r.known[[store.IdentityKeySize]byte(key)] = revocationEntry{revoked: revoked, at: now}
}

// isRevoked reports whether key (a device key) was revoked.
func (s *Server) isRevoked(ctx context.Context, key []byte) (bool, error) {
	if len(key) != store.IdentityKeySize {
		return false, nil
	}
	now := time.Now()
	if revoked, ok := s.revoked.get(key, now); ok {
		return revoked, nil
	}
	revoked, err := s.cfg.Store.Revoked(ctx, key)
	if err != nil {
		return false, err
	}
	s.revoked.put(key, revoked, now)
	return revoked, nil
}

// notRevoked refuses a call on a revoked device's connection.
func (s *session) notRevoked(ctx context.Context, method string) error {
	if s.identity == nil {
		return nil
	}
	revoked, err := s.srv.isRevoked(ctx, s.identity)
	if err != nil {
		return s.storeError(method, err)
	}
	if revoked {
		s.srv.cfg.Metrics.refused("revoked")
		return fail(nodecp.ErrorCode_revoked, "%s: device %x was removed from its user's device list", method, s.identity)
	}
	return nil
}

// listedDevice reports whether key is a device in the current list of a
// registered user other than itself.
func (s *Server) listedDevice(ctx context.Context, key []byte) (bool, error) {
	users, err := s.cfg.Store.DeviceUsers(ctx, key)
	if err != nil {
		return false, err
	}
	for _, u := range users {
		if bytes.Equal(u, key) {
			continue
		}
		ok, err := s.cfg.Store.Registered(ctx, u)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// currentDevices returns user's current list (its implicit one without a
// published list) and the signed bytes (nil without one).
func (s *Server) currentDevices(ctx context.Context, user []byte) (*devid.DeviceList, []byte, error) {
	raw, _, err := s.cfg.Store.DeviceList(ctx, user)
	if err != nil {
		return nil, nil, err
	}
	if raw == nil {
		return devid.ImplicitDeviceList(user), nil, nil
	}
	l, err := devid.ParseDeviceList(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("stored device list of %x: %w", user, err)
	}
	return l, raw, nil
}

// errListChanged: the stored list changed between the checks of a new
// list and its transaction.
var errListChanged = errors.New("the device list changed meanwhile")

// closeRevoked is the QUIC application error code of a connection closed
// because its device was revoked.
const closeRevoked = 4

func (s *session) PublishDevices(ctx context.Context, call devices.DeviceService_publishDevices) error {
	const method = "publishDevices"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		raw, _ := call.Args().List()
		l, err := devid.ParseDeviceList(raw)
		switch {
		case errors.Is(err, devid.ErrListSignature):
			return fail(nodecp.ErrorCode_unauthorized, "%s: %v", method, err)
		case err != nil:
			return fail(nodecp.ErrorCode_invalidArgument, "%s: %v", method, err)
		}
		switch ok, err := s.srv.cfg.Store.Registered(ctx, l.User); {
		case err != nil:
			return s.storeError(method, err)
		case !ok && s.srv.cfg.Registration != RegistrationNone:
			return fail(nodecp.ErrorCode_notRegistered, "%s: user %x has not registered with this node", method, []byte(l.User))
		}
		if l.Version > math.MaxInt64 { // the stores keep signed 64-bit versions
			return fail(nodecp.ErrorCode_invalidArgument, "%s: version %d above %d", method, l.Version, int64(math.MaxInt64))
		}
		keys := make([][]byte, len(l.Devices))
		for i, d := range l.Devices {
			keys[i] = d
		}
		// The checks that read the store run before its transaction (no
		// store call while one holds a connection); the transaction runs
		// only on the list they were made against, else they run again.
		var removed []ed25519.PublicKey
		for attempt := 1; ; attempt++ {
			prevRaw, _, err := s.srv.cfg.Store.DeviceList(ctx, l.User)
			if err != nil {
				return s.storeError(method, err)
			}
			prev := devid.ImplicitDeviceList(l.User)
			if prevRaw != nil {
				if prev, err = devid.ParseDeviceList(prevRaw); err != nil {
					return s.storeError(method, fmt.Errorf("stored device list of %x: %w", []byte(l.User), err))
				}
			}
			if prevRaw != nil && l.Version <= prev.Version {
				return fail(nodecp.ErrorCode_invalidArgument, "%s: version %d is not above the stored version %d", method, l.Version, prev.Version)
			}
			for _, d := range l.Devices {
				if !prev.Has(d) {
					if err := s.mayList(ctx, method, l.User, d); err != nil {
						return err
					}
				}
			}
			if err := s.mayRevoke(ctx, method, l.User, len(prev.Removed(l))); err != nil {
				return err
			}
			if attempt == 1 {
				// The list, a row per device and a revocation per dropped one.
				size := len(raw) + deviceRowBytes*(len(l.Devices)+len(prev.Removed(l)))
				if err := s.admitDisk(ctx, method, size, false); err != nil {
					return err
				}
			}
			if attempt == 1 && !s.srv.allowList(l.User) {
				s.srv.cfg.Metrics.refused("deviceListRate")
				return fail(nodecp.ErrorCode_rateLimited, "%s: user %x published too many device lists (%d at once, then paced); slow down", method, []byte(l.User), s.srv.cfg.DeviceListBurst)
			}
			check := func(cur []byte) (store.Revocation, error) {
				if !bytes.Equal(cur, prevRaw) {
					return store.Revocation{}, errListChanged
				}
				removed = prev.Removed(l)
				var rev store.Revocation
				for _, d := range removed {
					rev.Devices = append(rev.Devices, d)
					for _, suite := range s.srv.cfg.KeyPackageSuites {
						rev.Directories = append(rev.Directories, directoryKey(d, suite))
					}
				}
				return rev, nil
			}
			err = s.srv.cfg.Store.PutDeviceList(ctx, l.User, l.Version, raw, keys, check)
			if errors.Is(err, errListChanged) && attempt < 3 {
				continue
			}
			if errors.Is(err, errListChanged) || errors.Is(err, store.ErrStaleVersion) {
				return fail(nodecp.ErrorCode_invalidArgument, "%s: version %d is not above the stored version, or the list changed meanwhile", method, l.Version)
			}
			if err != nil {
				return s.storeError(method, err)
			}
			break
		}
		now := time.Now()
		for _, d := range removed {
			s.srv.revoked.put(d, true, now)
			if n := s.srv.admission.closeIdentity(d, closeRevoked, fail(nodecp.ErrorCode_revoked, "connection closed: the device was revoked").Error()); n > 0 {
				s.log.Info("closed a revoked device's connections", "device", fmt.Sprintf("%x", []byte(d)), "count", n)
			}
		}
		s.log.Info("device list published", "user", fmt.Sprintf("%x", []byte(l.User)), "version", l.Version,
			"devices", len(l.Devices), "revoked", len(removed))
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		res.SetVersion(l.Version)
		return nil
	})
}

// mayList refuses a device d that user may not add to its list: a
// revoked key, a key registered on its own or with KeyPackages of its own
// at the node, or one in another user's list. The user's own key may always be listed.
func (s *session) mayList(ctx context.Context, method string, user, d ed25519.PublicKey) error {
	if d.Equal(user) {
		return nil
	}
	switch revoked, err := s.srv.cfg.Store.Revoked(ctx, d); {
	case err != nil:
		return s.storeError(method, err)
	case revoked:
		return fail(nodecp.ErrorCode_revoked, "%s: device %x was revoked and cannot be listed again", method, []byte(d))
	}
	switch own, err := s.srv.cfg.Store.Registered(ctx, d); {
	case err != nil:
		return s.storeError(method, err)
	case own:
		return fail(nodecp.ErrorCode_unauthorized, "%s: %x is a registered identity of its own, not a new device", method, []byte(d))
	}
	if err := s.hasOwnKeyPackages(ctx, method, d); err != nil {
		return err
	}
	users, err := s.srv.cfg.Store.DeviceUsers(ctx, d)
	if err != nil {
		return s.storeError(method, err)
	}
	for _, u := range users {
		if !bytes.Equal(u, user) {
			return fail(nodecp.ErrorCode_unauthorized, "%s: device %x is listed by another user", method, []byte(d))
		}
	}
	return nil
}

func (s *session) FetchDevices(ctx context.Context, call devices.DeviceService_fetchDevices) error {
	const method = "fetchDevices"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		user, _ := call.Args().UserKey()
		if err := checkKey(method, "userKey", user); err != nil {
			return err
		}
		raw, _, err := s.srv.cfg.Store.DeviceList(ctx, user)
		if err != nil {
			return s.storeError(method, err)
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		return res.SetList(raw)
	})
}

func (s *session) FetchUserKeyPackages(ctx context.Context, call devices.DeviceService_fetchUserKeyPackages) error {
	const method = "fetchUserKeyPackages"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		args := call.Args()
		user, _ := args.UserKey()
		if err := checkKey(method, "userKey", user); err != nil {
			return err
		}
		suite, peek := args.CipherSuite(), args.Peek()
		if !s.srv.keepsSuite(suite) {
			return fail(nodecp.ErrorCode_noKeyPackage, "%s: this node keeps no KeyPackages of cipher suite 0x%04x (it keeps %s)", method, suite, suiteList(s.srv.cfg.KeyPackageSuites))
		}
		l, raw, err := s.srv.currentDevices(ctx, user)
		if err != nil {
			return s.storeError(method, err)
		}
		// The requester pays for every device up front (up to the burst,
		// see fetchCharge), so that a fetch is never cut short after
		// consuming some packages.
		if !s.srv.fetchers.get(s.identity).AllowN(time.Now(), s.srv.fetchCharge(len(l.Devices))) {
			s.srv.cfg.Metrics.refused("keyPackageFetchRate")
			return fail(nodecp.ErrorCode_rateLimited, "%s: too many KeyPackage fetches from %x; slow down", method, s.identity)
		}
		type found struct {
			device, pkg []byte
		}
		var out []found
		for _, d := range l.Devices {
			switch ok, err := s.srv.isRegistered(ctx, d); {
			case err != nil:
				return s.storeError(method, err)
			case !ok:
				continue
			}
			pkg, err := s.targetKeyPackage(ctx, method, d, suite, peek)
			switch codeOf(err) {
			case nodecp.ErrorCode_unknown:
			case nodecp.ErrorCode_noKeyPackage, nodecp.ErrorCode_rateLimited:
				continue
			default:
				return err
			}
			out = append(out, found{device: d, pkg: pkg})
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		pl, err := res.NewPackages(int32(len(out)))
		if err != nil {
			return err
		}
		for i, f := range out {
			e := pl.At(i)
			if err := e.SetDeviceKey(f.device); err != nil {
				return err
			}
			if err := e.SetPackage(f.pkg); err != nil {
				return err
			}
			e.SetPeeked(peek)
		}
		return res.SetList(raw)
	})
}

// checkKeyPackageOwner refuses a KeyPackage that key (the uploader) may
// not upload: a basic credential must name key; an x509 credential must
// be a device chain (devid.Verify) for key as the leaf's signature key,
// of a user whose current list holds key.
func (s *session) checkKeyPackageOwner(ctx context.Context, method string, pkg, key []byte) error {
	cred, err := keyPackageCredential(pkg)
	if err != nil {
		return fail(nodecp.ErrorCode_invalidArgument, "%s: %v", method, err)
	}
	switch cred.Type {
	case credentialTypeBasic:
		if !bytes.Equal(cred.Identity, key) {
			return fail(nodecp.ErrorCode_invalidArgument, "%s: key package credential identity %x is not identityKey %x", method, cred.Identity, key)
		}
		return nil
	}
	if !bytes.Equal(cred.SignatureKey, key) {
		return fail(nodecp.ErrorCode_unauthorized, "%s: key package signature key %x is not the uploader's %x", method, cred.SignatureKey, key)
	}
	d, err := devid.Verify(cred.Certificates, key, time.Now())
	if err != nil {
		return fail(nodecp.ErrorCode_unauthorized, "%s: key package credential: %v", method, err)
	}
	l, _, err := s.srv.currentDevices(ctx, d.User)
	if err != nil {
		return s.storeError(method, err)
	}
	if !l.Has(ed25519.PublicKey(key)) {
		return fail(nodecp.ErrorCode_unauthorized, "%s: device %x is not in the current device list of user %x", method, key, []byte(d.User))
	}
	return nil
}
