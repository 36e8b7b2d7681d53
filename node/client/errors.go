package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quicproquo/quicproquo/internal/transport"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// Sentinel errors for the calls a node refuses. Match with errors.Is.
var (
	ErrUnauthorized    = errors.New("unauthorized")
	ErrNoKeyPackage    = errors.New("no key package left")
	ErrTooLarge        = errors.New("too large")
	ErrLimit           = errors.New("limit reached")
	ErrRateLimited     = errors.New("rate limited")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrStaleEpoch      = errors.New("stale epoch")
	ErrInternal        = errors.New("node internal error")
	// ErrInvalidCommit: the group's public state refuses a handshake
	// message (bad signature, not a member's leaf, invalid proposal,
	// malformed path).
	ErrInvalidCommit = errors.New("invalid commit")
	// ErrFutureEpoch: a commit for an epoch the group has not reached.
	ErrFutureEpoch = errors.New("future epoch")
	// ErrGroupExists: CreateGroup for a group id claimed before.
	ErrGroupExists = errors.New("group exists")
	// ErrBlobIncomplete: a blob read before its upload finished.
	ErrBlobIncomplete = errors.New("blob incomplete")
	// ErrRevoked: the connection's device was removed from its user's
	// device list; the node refuses it for ever.
	ErrRevoked = errors.New("device revoked")
	// ErrCursorAhead: a receive, subscribe or ack named a sequence number
	// the queue never handed out: the node's database is older than what
	// the client read (restored from a backup, say). Read again from 0;
	// what was read before comes again and is recognised.
	ErrCursorAhead = errors.New("cursor ahead of the node's queue")

	ErrNotRegistered    = errors.New("not registered with the node")
	ErrUnknownRecipient = errors.New("unknown recipient")
	ErrQuota            = errors.New("strangers' share of the recipient's queue is used up")
	ErrDiskFull         = errors.New("node disk budget used up")
	ErrBadToken         = errors.New("registration token or proof refused")
	// ErrPeekUnsupported: a node from before peeks answered a peek as a
	// plain fetch, and so consumed a KeyPackage.
	ErrPeekUnsupported = errors.New("the node does not support peeking at KeyPackages")
	// ErrUnimplemented: the node does not have the method called (a node
	// from before it); the call did nothing.
	ErrUnimplemented = errors.New("the node does not implement the method")

	// ErrClosed: the connection to the node ended while a call waited for
	// its answer; the call may or may not have taken effect.
	ErrClosed = transport.ErrClosed

	// ErrServerCertChanged: the node presented a certificate other than the
	// pinned one.
	ErrServerCertChanged = errors.New("node certificate changed")
)

var codeSentinels = map[nodecp.ErrorCode]error{
	nodecp.ErrorCode_unauthorized:    ErrUnauthorized,
	nodecp.ErrorCode_noKeyPackage:    ErrNoKeyPackage,
	nodecp.ErrorCode_tooLarge:        ErrTooLarge,
	nodecp.ErrorCode_limit:           ErrLimit,
	nodecp.ErrorCode_rateLimited:     ErrRateLimited,
	nodecp.ErrorCode_invalidArgument: ErrInvalidArgument,
	nodecp.ErrorCode_staleEpoch:      ErrStaleEpoch,
	nodecp.ErrorCode_internal:        ErrInternal,

	nodecp.ErrorCode_notRegistered:    ErrNotRegistered,
	nodecp.ErrorCode_unknownRecipient: ErrUnknownRecipient,
	nodecp.ErrorCode_quota:            ErrQuota,
	nodecp.ErrorCode_diskFull:         ErrDiskFull,
	nodecp.ErrorCode_badToken:         ErrBadToken,

	nodecp.ErrorCode_invalidCommit: ErrInvalidCommit,
	nodecp.ErrorCode_futureEpoch:   ErrFutureEpoch,
	nodecp.ErrorCode_groupExists:   ErrGroupExists,

	nodecp.ErrorCode_blobIncomplete: ErrBlobIncomplete,
	nodecp.ErrorCode_revoked:        ErrRevoked,
	nodecp.ErrorCode_cursorAhead:    ErrCursorAhead,
}

// NodeError is a call the node refused: Code names the reason, Message is
// the node's description.
type NodeError struct {
	Code    nodecp.ErrorCode
	Message string
}

func (e *NodeError) Error() string { return "node: " + e.Code.String() + ": " + e.Message }

// Unwrap returns the sentinel for Code.
func (e *NodeError) Unwrap() error { return codeSentinels[e.Code] }

// parseNodeError finds a "qpq:<code>: <message>" reason in an RPC error's
// text.
func parseNodeError(text string) (*NodeError, bool) {
	i := strings.Index(text, "qpq:")
	if i < 0 {
		return nil, false
	}
	rest := text[i+len("qpq:"):]
	name, msg, ok := strings.Cut(rest, ": ")
	if !ok {
		return nil, false
	}
	code := nodecp.ErrorCodeFromString(name)
	if code == nodecp.ErrorCode_unknown && name != nodecp.ErrorCode_unknown.String() {
		return nil, false
	}
	return &NodeError{Code: code, Message: msg}, true
}

// callError turns an RPC failure of op into the error the caller sees.
func callError(op string, err error) error {
	if err == nil {
		return nil
	}
	if ne, ok := parseNodeError(err.Error()); ok {
		return fmt.Errorf("%s: %w", op, ne)
	}
	return fmt.Errorf("%s: %w", op, err)
}
