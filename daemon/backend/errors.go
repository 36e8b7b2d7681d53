package backend

import (
	"errors"
	"fmt"
)

// Sentinel errors. The API layer maps each to a gRPC status code.
var (
	// ErrUnimplemented: the operation needs a part not wired into qpd yet.
	ErrUnimplemented = errors.New("not implemented yet")
	// ErrNotRegistered: the operation needs an identity; run register first.
	ErrNotRegistered = errors.New("not registered: no identity yet (run register)")
	// ErrNotConnected: the operation needs the node and it is not reachable.
	ErrNotConnected = errors.New("not connected to the node")
	// ErrGroupNotFound: no group matches the given id or name.
	ErrGroupNotFound = errors.New("group not found")
	// ErrGroupExists: a group of this user already has the name.
	ErrGroupExists = errors.New("a group with this name exists already")
	// ErrAmbiguousGroup: several groups have the given name; use the id.
	ErrAmbiguousGroup = errors.New("group name is ambiguous")
	// ErrInvalidArgument: a request value is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNoKeyPackage: the node has no KeyPackage for the peer.
	ErrNoKeyPackage = errors.New("no KeyPackage for this peer")
	// ErrNotMember: the user is not (or no longer) a member of the group.
	ErrNotMember = errors.New("not a member of the group")
	// ErrClosed: the backend is shutting down.
	ErrClosed = errors.New("backend closed")
)

// userErrors are the typed errors a caller shows as they are: their text
// already says what failed.
var userErrors = []error{ErrUnimplemented, ErrNotRegistered, ErrNotConnected, ErrGroupNotFound, ErrGroupExists,
	ErrAmbiguousGroup, ErrInvalidArgument, ErrNoKeyPackage, ErrNotMember, ErrClosed, ErrNotPrimaryDevice}

// opError names the operation in an unexpected error (a store failure),
// and passes a typed one on as it is, so that messages do not stack up
// ("backend: send: group not found: ...").
func opError(op string, err error) error {
	for _, u := range userErrors {
		if errors.Is(err, u) {
			return err
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}
