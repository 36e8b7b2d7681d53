package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/quicproquo/quicproquo/node/store"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// callError is a refused call: its text, sent as the exception reason, is
// "qpq:<code>: <msg>".
type callError struct {
	code nodecp.ErrorCode
	msg  string
}

func (e *callError) Error() string { return "qpq:" + e.code.String() + ": " + e.msg }

func fail(code nodecp.ErrorCode, format string, args ...any) error {
	return &callError{code: code, msg: fmt.Sprintf(format, args...)}
}

// codeOf returns the code a call's error carries (unknown for a nil error).
func codeOf(err error) nodecp.ErrorCode {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.code
	}
	return nodecp.ErrorCode_unknown
}

// storeError turns a store failure into a call error. Failures that are not
// the caller's fault are logged with their detail and reported as internal.
func (s *session) storeError(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNoKeyPackage):
		return fail(nodecp.ErrorCode_noKeyPackage, "%s: no key package left for that identity", op)
	case errors.Is(err, store.ErrQuota):
		s.srv.cfg.Metrics.refused("quota")
		return fail(nodecp.ErrorCode_quota, "%s: %v", op, err)
	case errors.Is(err, store.ErrNotRegistered):
		return fail(nodecp.ErrorCode_notRegistered, "%s: %v", op, err)
	case errors.Is(err, store.ErrBadToken):
		return fail(nodecp.ErrorCode_badToken, "%s: %v", op, err)
	case errors.Is(err, store.ErrLimit):
		return fail(nodecp.ErrorCode_limit, "%s: %v", op, err)
	case errors.Is(err, store.ErrInvalid):
		return fail(nodecp.ErrorCode_invalidArgument, "%s: %v", op, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fail(nodecp.ErrorCode_internal, "%s: cancelled", op)
	default:
		s.log.Error("store failure", "op", op, "err", err)
		return fail(nodecp.ErrorCode_internal, "%s: storage failure", op)
	}
}
