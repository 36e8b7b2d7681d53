package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrNotRegistered: the identity has not registered with the node.
	ErrNotRegistered = errors.New("store: identity is not registered")
	// ErrBadToken: a registration token that is unknown, expired or used up.
	ErrBadToken = errors.New("store: registration token is unknown, expired or used up")
)

// Registry is the registration half of a Store.
type Registry interface {
	// CreateToken stores a registration token by its hash (TokenHash of
	// the secret the operator hands out), good for uses redemptions until
	// expires. uses must be positive; a hash already stored is ErrInvalid.
	CreateToken(ctx context.Context, hash [32]byte, uses int, expires time.Time) error

	// RedeemToken registers identity with the token whose hash is given,
	// using up one of its redemptions, in one transaction. An identity
	// already registered stays so and uses nothing. A token that is
	// unknown, expired or used up is ErrBadToken.
	RedeemToken(ctx context.Context, identity []byte, hash [32]byte) error

	// Register registers identity (a policy without tokens has checked its
	// cost). Registering twice is not an error.
	Register(ctx context.Context, identity []byte) error

	// Registered reports whether identity is registered.
	Registered(ctx context.Context, identity []byte) (bool, error)
}

// tokenPrefix starts every registration token, so that one is recognised
// in a configuration file or a shell history.
const tokenPrefix = "qpt_"

// NewToken returns a fresh registration token (256 random bits) and the
// hash under which a store keeps it. Only the hash is stored: a copy of the
// database does not give away the tokens still open.
func NewToken() (secret string, hash [32]byte) {
	var b [32]byte
	rand.Read(b[:])
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	clear(b[:])
	return secret, TokenHash(secret)
}

// TokenHash is the hash a store keeps of a registration token. Surrounding
// white space is ignored (tokens are pasted from terminals).
func TokenHash(secret string) [32]byte {
	return sha256.Sum256([]byte(strings.TrimSpace(secret)))
}

// CheckTokenUses reports ErrInvalid unless uses is positive.
func CheckTokenUses(uses int) error {
	if uses <= 0 {
		return fmt.Errorf("token uses %d is not positive: %w", uses, ErrInvalid)
	}
	return nil
}
