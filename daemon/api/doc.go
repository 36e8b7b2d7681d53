// Package api serves qpd's gRPC API (proto/qpq/daemon/v1) on a Unix socket.
//
// Access control: the socket file has mode 0600 in a folder of mode 0700,
// and every connection is also checked with SO_PEERCRED. The transport
// credentials record the peer's uid when the connection is accepted, and
// interceptors refuse every call (including health and reflection) from a
// uid other than the daemon's own with PERMISSION_DENIED.
//
// The Server type only translates: every call goes to the backend.Backend,
// and backend errors map to status codes (ErrUnimplemented → UNIMPLEMENTED,
// ErrNotRegistered → FAILED_PRECONDITION, ErrNotConnected → UNAVAILABLE,
// ErrGroupNotFound and ErrNoKeyPackage → NOT_FOUND, bad input →
// INVALID_ARGUMENT).
package api
