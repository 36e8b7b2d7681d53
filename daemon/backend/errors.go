package backend

import "errors"

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
