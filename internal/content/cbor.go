package content

import (
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// Limits of the decoder. MaxSize bounds the whole message; the others
// bound what a small hostile input can make the decoder build.
const (
	MaxSize          = 128 << 10 // bytes of one encoded message
	maxNestedLevels  = 16        // CBOR nesting
	maxArrayElements = 256       // elements of one CBOR array
	maxMapPairs      = 32        // pairs of one CBOR map
)

var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
		MaxNestedLevels:  maxNestedLevels,
		MaxArrayElements: maxArrayElements,
		MaxMapPairs:      maxMapPairs,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// decode decodes one CBOR item into v, turning the library's errors into
// ours.
func decode(field string, raw []byte, v any) error {
	if err := decMode.Unmarshal(raw, v); err != nil {
		return &Error{Field: field, Kind: cborKind(err), Err: err}
	}
	return nil
}

func cborKind(err error) error {
	var (
		typ    *cbor.UnmarshalTypeError
		key    *cbor.InvalidMapKeyTypeError
		dup    *cbor.DupMapKeyError
		nested *cbor.MaxNestedLevelError
		array  *cbor.MaxArrayElementsError
		pairs  *cbor.MaxMapPairsError
	)
	switch {
	case errors.As(err, &dup):
		return ErrDuplicateKey
	case errors.As(err, &nested), errors.As(err, &array), errors.As(err, &pairs):
		return ErrTooLarge
	case errors.As(err, &typ), errors.As(err, &key):
		return ErrInvalid
	default:
		return ErrSyntax
	}
}

// isNull reports whether raw is the CBOR null.
func isNull(raw cbor.RawMessage) bool { return len(raw) == 1 && raw[0] == 0xf6 }

// array decodes raw as an array of exactly n items.
func array(field string, raw cbor.RawMessage, n int) ([]cbor.RawMessage, error) {
	a, err := arrayField(field, raw, n)
	if err != nil {
		return nil, err
	}
	if len(a) != n {
		return nil, fieldErr(field, ErrInvalid, "%d items, want %d", len(a), n)
	}
	return a, nil
}

// CBOR major types.
const (
	majorUint  = 0
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
)

// major checks that raw is of the given CBOR major type: the library
// would decode null into a zero value, or a text string into bytes,
// without complaint.
func major(field string, raw cbor.RawMessage, want byte) error {
	if len(raw) == 0 || raw[0]>>5 != want || raw[0] == 0xf6 {
		return fieldErr(field, ErrInvalid, "wrong CBOR type")
	}
	return nil
}

func bytesField(field string, raw cbor.RawMessage, limit int) ([]byte, error) {
	if err := major(field, raw, majorBytes); err != nil {
		return nil, err
	}
	b := []byte{}
	if err := decode(field, raw, &b); err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fieldErr(field, ErrTooLarge, "%d bytes, limit %d", len(b), limit)
	}
	return b, nil
}

func textField(field string, raw cbor.RawMessage, limit int) (string, error) {
	if err := major(field, raw, majorText); err != nil {
		return "", err
	}
	var s string
	if err := decode(field, raw, &s); err != nil {
		return "", err
	}
	if len(s) > limit {
		return "", fieldErr(field, ErrTooLarge, "%d bytes, limit %d", len(s), limit)
	}
	return s, nil
}

func uintField(field string, raw cbor.RawMessage, limit uint64) (uint64, error) {
	if err := major(field, raw, majorUint); err != nil {
		return 0, err
	}
	var v uint64
	if err := decode(field, raw, &v); err != nil {
		return 0, err
	}
	if v > limit {
		return 0, fieldErr(field, ErrInvalid, "%d above %d", v, limit)
	}
	return v, nil
}

func boolField(field string, raw cbor.RawMessage) (bool, error) {
	switch {
	case len(raw) == 1 && raw[0] == 0xf4:
		return false, nil
	case len(raw) == 1 && raw[0] == 0xf5:
		return true, nil
	}
	return false, fieldErr(field, ErrInvalid, "not a boolean")
}

// arrayField decodes raw as an array of at most limit items.
func arrayField(field string, raw cbor.RawMessage, limit int) ([]cbor.RawMessage, error) {
	if err := major(field, raw, majorArray); err != nil {
		return nil, err
	}
	var a []cbor.RawMessage
	if err := decode(field, raw, &a); err != nil {
		return nil, err
	}
	if len(a) > limit {
		return nil, fieldErr(field, ErrTooLarge, "%d items, limit %d", len(a), limit)
	}
	return a, nil
}
