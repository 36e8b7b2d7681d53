package devid

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file is the device list: the set of a user's current devices,
// signed by the user identity key, that the node publishes and every
// member fetches with KeyPackages. A device that leaves the list is
// revoked for ever.
//
// A signed list is, all integers big-endian:
//
//	format   1 byte    (1)
//	user     32 bytes  U
//	version  8 bytes   strictly increasing per user
//	created  8 bytes   Unix nanoseconds (shown, never decided on)
//	count    1 byte    1..MaxDevices
//	devices  count × 32 bytes, strictly ascending (sorted, no duplicates)
//	sig      64 bytes  Ed25519 by U over DeviceListLabel || everything above
//
// The encoding is canonical: one list has one encoding, and a parse
// refuses anything else (trailing bytes, unsorted devices), so the node
// and members compare lists by bytes.

// DeviceListLabel is the domain separation of a list's signature.
const DeviceListLabel = "qpq-device-list-v1"

// Bounds of a device list.
const (
	// MaxDevices is the most devices a user may have.
	MaxDevices = 16
	// MaxDeviceListSize bounds what ParseDeviceList reads.
	MaxDeviceListSize = 4096
)

const (
	listFormat     = 1
	listHeaderSize = 1 + ed25519.PublicKeySize + 8 + 8 + 1
)

// The refusals of ParseDeviceList and Sign; each error wraps one of them.
var (
	// ErrListMalformed: not a well-formed list (size, format, count,
	// order, trailing bytes).
	ErrListMalformed = errors.New("devid: malformed device list")
	// ErrListSignature: the signature is not U's over the list.
	ErrListSignature = errors.New("devid: device list not signed by its user")
	// ErrListBounds: no devices, or more than MaxDevices.
	ErrListBounds = errors.New("devid: device list out of bounds")
)

// DeviceList is a user's current devices at one version.
type DeviceList struct {
	User    ed25519.PublicKey
	Version uint64
	// Devices are the device signature keys, sorted, without duplicates.
	Devices []ed25519.PublicKey
	Created time.Time
}

// ImplicitDeviceList is the list of a user who never published one: the
// single device whose key is the user's, at version 0.
func ImplicitDeviceList(user ed25519.PublicKey) *DeviceList {
	return &DeviceList{User: append(ed25519.PublicKey{}, user...), Devices: []ed25519.PublicKey{append(ed25519.PublicKey{}, user...)}}
}

// Has reports whether d is one of the list's devices.
func (l *DeviceList) Has(d ed25519.PublicKey) bool {
	if len(d) != ed25519.PublicKeySize {
		return false
	}
	found := 0
	for _, k := range l.Devices {
		found |= subtle.ConstantTimeCompare(k, d)
	}
	return found == 1
}

// Sign encodes the list and signs it with userPriv, which must be the
// private key of l.User. Devices are sorted in l; duplicates, an empty or
// too long list, or keys of the wrong size are refused.
func (l *DeviceList) Sign(userPriv ed25519.PrivateKey) ([]byte, error) {
	if len(userPriv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: identity key has %d bytes", ErrInvalidKey, len(userPriv))
	}
	if len(l.User) != ed25519.PublicKeySize || subtle.ConstantTimeCompare(userPriv.Public().(ed25519.PublicKey), l.User) != 1 {
		return nil, fmt.Errorf("%w: the signing key is not the list's user", ErrInvalidKey)
	}
	if len(l.Devices) == 0 || len(l.Devices) > MaxDevices {
		return nil, fmt.Errorf("%w: %d devices, want 1 to %d", ErrListBounds, len(l.Devices), MaxDevices)
	}
	for _, d := range l.Devices {
		if len(d) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: device key has %d bytes", ErrInvalidKey, len(d))
		}
	}
	slices.SortFunc(l.Devices, func(a, b ed25519.PublicKey) int { return bytes.Compare(a, b) })
	for i := 1; i < len(l.Devices); i++ {
		if l.Devices[i].Equal(l.Devices[i-1]) {
			return nil, fmt.Errorf("%w: device %x listed twice", ErrListMalformed, []byte(l.Devices[i]))
		}
	}
	b := make([]byte, 0, listHeaderSize+len(l.Devices)*ed25519.PublicKeySize+ed25519.SignatureSize)
	b = append(b, listFormat)
	b = append(b, l.User...)
	b = binary.BigEndian.AppendUint64(b, l.Version)
	var created int64
	if !l.Created.IsZero() {
		created = l.Created.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(created))
	b = append(b, byte(len(l.Devices)))
	for _, d := range l.Devices {
		b = append(b, d...)
	}
	return append(b, ed25519.Sign(userPriv, signedList(b))...), nil
}

func signedList(body []byte) []byte {
	return append([]byte(DeviceListLabel), body...)
}

// ParseDeviceList decodes a signed list and checks its signature by the
// user it names. Which user that must be is the caller's to check.
func ParseDeviceList(b []byte) (*DeviceList, error) {
	if len(b) > MaxDeviceListSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrListMalformed, len(b), MaxDeviceListSize)
	}
	if len(b) < listHeaderSize+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrListMalformed, len(b))
	}
	if b[0] != listFormat {
		return nil, fmt.Errorf("%w: format %d", ErrListMalformed, b[0])
	}
	n := int(b[listHeaderSize-1])
	if n == 0 || n > MaxDevices {
		return nil, fmt.Errorf("%w: %d devices, want 1 to %d", ErrListBounds, n, MaxDevices)
	}
	bodyLen := listHeaderSize + n*ed25519.PublicKeySize
	if len(b) != bodyLen+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes for %d devices", ErrListMalformed, len(b), n)
	}
	user := ed25519.PublicKey(bytes.Clone(b[1 : 1+ed25519.PublicKeySize]))
	if !ed25519.Verify(user, signedList(b[:bodyLen]), b[bodyLen:]) {
		return nil, fmt.Errorf("%w: %x", ErrListSignature, []byte(user))
	}
	l := &DeviceList{
		User:    user,
		Version: binary.BigEndian.Uint64(b[33:41]),
		Devices: make([]ed25519.PublicKey, n),
	}
	if c := int64(binary.BigEndian.Uint64(b[41:49])); c != 0 {
		l.Created = time.Unix(0, c).UTC()
	}
	for i := range n {
		off := listHeaderSize + i*ed25519.PublicKeySize
		l.Devices[i] = bytes.Clone(b[off : off+ed25519.PublicKeySize])
		if i > 0 && bytes.Compare(l.Devices[i-1], l.Devices[i]) >= 0 {
			return nil, fmt.Errorf("%w: devices not strictly ascending", ErrListMalformed)
		}
	}
	return l, nil
}

// Removed returns the devices of l that next no longer lists: the devices
// that publishing next revokes.
func (l *DeviceList) Removed(next *DeviceList) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for _, d := range l.Devices {
		if !next.Has(d) {
			out = append(out, d)
		}
	}
	return out
}
