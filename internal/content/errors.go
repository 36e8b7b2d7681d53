package content

import (
	"errors"
	"fmt"
)

var (
	// ErrTooLarge: the message, or a part of it, is above a limit.
	ErrTooLarge = errors.New("too large")
	// ErrSyntax: the bytes are not well-formed strict CBOR (truncated,
	// trailing bytes, indefinite lengths, tags, invalid UTF-8 text).
	ErrSyntax = errors.New("malformed CBOR")
	// ErrDuplicateKey: a map has the same key twice.
	ErrDuplicateKey = errors.New("duplicate map key")
	// ErrInvalid: well-formed CBOR that is not a valid message (wrong
	// types, lengths or values).
	ErrInvalid = errors.New("invalid")
	// ErrVersion: the version marker is missing or not Version.
	ErrVersion = errors.New("unsupported version")
)

// Error is what Parse and Append return: which field, which kind of
// error (one of the Err values above) and the cause.
type Error struct {
	Field string
	Kind  error
	Err   error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("content: %s: %v", e.Field, e.Kind)
	}
	return fmt.Sprintf("content: %s: %v: %v", e.Field, e.Kind, e.Err)
}

// Unwrap lets errors.Is match the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func fieldErr(field string, kind error, format string, args ...any) error {
	var err error
	if format != "" {
		err = fmt.Errorf(format, args...)
	}
	return &Error{Field: field, Kind: kind, Err: err}
}
