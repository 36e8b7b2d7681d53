package link

import (
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
)

// A refusal is the primary's answer when its user does not confirm the
// request: sealed in the response box like a response, so only the
// holder of the code reads it and nobody else can forge it.
//
//	Refusal = format(1)=2 | device(32)
//
// It names the refused device, so a refusal for one request cannot be
// taken for another's.

const refusalFormat = 2

// ErrRefused: the primary's user did not confirm the link (said no, or
// did not answer in time).
var ErrRefused = errors.New("link: the primary device refused the link")

// MarshalRefusal encodes the refusal of device's request.
func MarshalRefusal(device ed25519.PublicKey) ([]byte, error) {
	if len(device) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: device key has %d bytes", ErrMalformed, len(device))
	}
	return append([]byte{refusalFormat}, device...), nil
}

// IsRefusal reports whether the opened response box b is a refusal; a
// refusal that names another device than device is ErrMalformed.
func IsRefusal(b []byte, device ed25519.PublicKey) (bool, error) {
	if len(b) == 0 || b[0] != refusalFormat {
		return false, nil
	}
	if len(b) != 1+ed25519.PublicKeySize || subtle.ConstantTimeCompare(b[1:], device) != 1 {
		return false, fmt.Errorf("%w: a refusal of %d bytes that does not name this device", ErrMalformed, len(b))
	}
	return true, nil
}
