package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/quicproquo/quicproquo/internal/pow"
	"github.com/quicproquo/quicproquo/node/store"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// Policy is how identities register with the node (Config.Registration).
// Only registered identities upload KeyPackages, enqueue, send to groups
// or receive direct messages.
type Policy string

const (
	// RegistrationNone checks nothing: every identity counts as registered.
	// It is the zero Config's policy, for embedding and tests; qpnode never
	// runs with it.
	RegistrationNone Policy = ""
	// RegistrationOpen registers anyone who proves Config.PowDifficulty
	// bits of work bound to its key and the connection (package
	// internal/pow), or redeems a token.
	RegistrationOpen Policy = "open"
	// RegistrationToken registers only identities that redeem a token of
	// the operator's (qpnode token create).
	RegistrationToken Policy = "token"
	// RegistrationClosed registers nobody new.
	RegistrationClosed Policy = "closed"
)

// ParsePolicy parses a --registration value.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case RegistrationOpen, RegistrationToken, RegistrationClosed:
		return p, nil
	}
	return "", fmt.Errorf("registration policy %q: want open, token or closed", s)
}

// DefaultPowDifficulty is the work of an open registration: about a
// million SHA-256 hashes, under half a second on one core.
const DefaultPowDifficulty = 20

// maxKnownIdentities bounds the cache of identities known to be
// registered; past it the cache starts again empty (registration is never
// taken back, so the cache only saves store reads).
const maxKnownIdentities = 1 << 16

// registry caches which identities are registered.
type registry struct {
	mu    sync.Mutex
	known map[[store.IdentityKeySize]byte]struct{}
}

func (r *registry) has(key []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.known[[store.IdentityKeySize]byte(key)]
	return ok
}

func (r *registry) add(key []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil || len(r.known) >= maxKnownIdentities {
		r.known = make(map[[store.IdentityKeySize]byte]struct{})
	}
	r.known[[store.IdentityKeySize]byte(key)] = struct{}{}
}

// isRegistered reports whether key (an identity or device key) is
// registered: registered itself, or a device in the current list of a
// registered user, and not revoked (devices.go).
func (s *Server) isRegistered(ctx context.Context, key []byte) (bool, error) {
	switch revoked, err := s.isRevoked(ctx, key); {
	case err != nil:
		return false, err
	case revoked:
		return false, nil
	}
	if s.cfg.Registration == RegistrationNone || s.reg.has(key) {
		return true, nil
	}
	ok, err := s.cfg.Store.Registered(ctx, key)
	if err == nil && !ok {
		ok, err = s.listedDevice(ctx, key)
	}
	if ok {
		s.reg.add(key)
	}
	return ok, err
}

// registered requires the connection's identity to be registered.
func (s *session) registered(ctx context.Context, method string) error {
	if err := s.authenticated(method); err != nil {
		return err
	}
	ok, err := s.srv.isRegistered(ctx, s.identity)
	if err != nil {
		return s.storeError(method, err)
	}
	if !ok {
		return fail(nodecp.ErrorCode_notRegistered, "%s: %x has not registered with this node (policy %s); register first",
			method, s.identity, s.srv.cfg.Registration)
	}
	return nil
}

// knownRecipient requires recipient to be registered.
func (s *session) knownRecipient(ctx context.Context, method string, recipient []byte) error {
	ok, err := s.srv.isRegistered(ctx, recipient)
	if err != nil {
		return s.storeError(method, err)
	}
	if !ok {
		s.srv.cfg.Metrics.refused("unknownRecipient")
		return fail(nodecp.ErrorCode_unknownRecipient, "%s: no identity %x is registered at this node", method, recipient)
	}
	return nil
}

// challenge returns the connection's proof-of-work challenge, made on
// first use.
func (s *session) challenge() []byte {
	s.challengeOnce.Do(func() {
		s.challengeBytes = make([]byte, 32)
		rand.Read(s.challengeBytes)
	})
	return s.challengeBytes
}

func (s *session) Registration(ctx context.Context, call nodecp.NodeService_registration) error {
	const method = "registration"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		ok, err := s.srv.isRegistered(ctx, s.identity)
		if err != nil {
			return s.storeError(method, err)
		}
		res, err := call.AllocResults()
		if err != nil {
			return err
		}
		res.SetRegistered(ok)
		policy := s.srv.cfg.Registration
		if policy == RegistrationNone {
			policy = "none"
		}
		if err := res.SetPolicy(string(policy)); err != nil {
			return err
		}
		if s.srv.cfg.Registration == RegistrationOpen {
			res.SetDifficulty(uint8(s.srv.cfg.PowDifficulty))
			return res.SetChallenge(s.challenge())
		}
		return nil
	})
}

func (s *session) Register(ctx context.Context, call nodecp.NodeService_register) error {
	const method = "register"
	return s.serve(method, func() error {
		if err := s.authenticated(method); err != nil {
			return err
		}
		switch ok, err := s.srv.isRegistered(ctx, s.identity); {
		case err != nil:
			return s.storeError(method, err)
		case ok:
			return nil
		}
		args := call.Args()
		token, _ := args.Token()
		nonce, _ := args.Nonce()
		policy := s.srv.cfg.Registration
		var how string
		switch {
		case policy == RegistrationClosed:
			return fail(nodecp.ErrorCode_notRegistered, "%s: this node registers no new identities", method)
		case token != "":
			err := s.srv.cfg.Store.RedeemToken(ctx, s.identity, store.TokenHash(token))
			if errors.Is(err, store.ErrBadToken) {
				return fail(nodecp.ErrorCode_badToken, "%s: the token is unknown, expired or used up", method)
			}
			if err != nil {
				return s.storeError(method, err)
			}
			how = "token"
		case policy == RegistrationToken:
			return fail(nodecp.ErrorCode_notRegistered, "%s: this node registers identities only with a token from its operator", method)
		default:
			if !pow.Check(s.challenge(), s.identity, nonce, s.srv.cfg.PowDifficulty) {
				return fail(nodecp.ErrorCode_badToken, "%s: the proof of work does not solve this connection's challenge at difficulty %d",
					method, s.srv.cfg.PowDifficulty)
			}
			if err := s.srv.cfg.Store.Register(ctx, s.identity); err != nil {
				return s.storeError(method, err)
			}
			how = "proof of work"
		}
		s.srv.reg.add(s.identity)
		s.srv.cfg.Metrics.registration(how)
		s.log.Info("identity registered", "by", how)
		return nil
	})
}
