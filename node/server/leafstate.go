package server

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// This file is what the leaf rule knows of a device besides its
// revocation: which user lists it. A device leaves its user's list only
// by being revoked, so "D is in U's list" stays true until D's
// revocation, which the revocation cache rechecks; the node may therefore
// remember it without a limit of time. That a device is in no list is not
// remembered (a new list may add it).

// listings caches which user's current list names a device.
type listings struct {
	mu    sync.Mutex
	known map[[store.IdentityKeySize]byte][store.IdentityKeySize]byte
}

func (l *listings) has(device, user []byte) bool {
	if len(device) != store.IdentityKeySize || len(user) != store.IdentityKeySize {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.known[[store.IdentityKeySize]byte(device)]
	return ok && u == [store.IdentityKeySize]byte(user)
}

func (l *listings) put(device, user []byte) {
	if len(device) != store.IdentityKeySize || len(user) != store.IdentityKeySize {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.known == nil || len(l.known) >= maxRevocationCache {
		l.known = make(map[[store.IdentityKeySize]byte][store.IdentityKeySize]byte)
	}
	l.known[[store.IdentityKeySize]byte(device)] = [store.IdentityKeySize]byte(user)
}

// deviceState is what the leaf rule needs of a device key.
type deviceState struct {
	revoked bool
	users   [][]byte // users whose current list names the device
}

func (d deviceState) listedBy(user []byte) bool {
	for _, u := range d.users {
		if bytes.Equal(u, user) {
			return true
		}
	}
	return false
}

// isListedBy reports whether device is in user's current list.
func (s *Server) isListedBy(ctx context.Context, device, user []byte) (bool, error) {
	if s.listings.has(device, user) {
		return true, nil
	}
	users, err := s.cfg.Store.DeviceUsers(ctx, device)
	if err != nil {
		return false, err
	}
	st := deviceState{users: users}
	if !st.listedBy(user) {
		return false, nil
	}
	s.listings.put(device, user)
	return true, nil
}

// deviceStates looks keys (device keys) up in the store in one batched
// lookup per store.MaxDeviceStates keys, and remembers the answers in the
// revocation cache and who lists each device.
func (s *Server) deviceStates(ctx context.Context, keys [][]byte) ([]deviceState, error) {
	out := make([]deviceState, 0, len(keys))
	for start := 0; start < len(keys); start += store.MaxDeviceStates {
		chunk := keys[start:min(start+store.MaxDeviceStates, len(keys))]
		now := time.Now() // before the lookup: the answer is at least this fresh
		states, err := s.cfg.Store.DeviceStates(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for i, st := range states {
			s.revoked.put(chunk[i], st.Revoked, now)
			for _, u := range st.Users {
				s.listings.put(chunk[i], u)
			}
			out = append(out, deviceState{revoked: st.Revoked, users: st.Users})
		}
	}
	return out, nil
}
