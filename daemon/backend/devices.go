package backend

import (
	"crypto/ed25519"
	"errors"
	"time"
)

// This file is the person's devices as the API sees them: the list, and
// revoking one (link.go adds them).

// The refusals of the device calls.
var (
	// ErrNotPrimary: the operation needs the user identity key, which
	// only a primary device holds (the first device, or one restored
	// from the identity backup); a linked device cannot link or revoke.
	ErrNotPrimary = errors.New("this device is not primary: only a device holding the identity key (the first one, or one restored with qpd --restore) can link or revoke devices")
	// ErrRevokeSelf: revoking the device that asks.
	ErrRevokeSelf = errors.New("a device cannot revoke itself: revoke it from another primary device")
	// ErrDeviceNotFound: no device of the list matches.
	ErrDeviceNotFound = errors.New("no such device in the device list")
	// ErrAmbiguousDevice: a key prefix that starts several devices' keys.
	ErrAmbiguousDevice = errors.New("device key prefix is ambiguous")
	// ErrIdentityPresent: linking a daemon that already has an identity.
	ErrIdentityPresent = errors.New("this daemon already has an identity: link a new device on an empty state folder")
	// ErrLink: the link exchange failed (a wrong or expired code, a
	// response that does not check out); it wraps the reason.
	ErrLink = errors.New("link failed")
	// ErrTooManyDevices: the device list is full.
	ErrTooManyDevices = errors.New("the device list is full")
)

// DeviceEntry is one device of the person.
type DeviceEntry struct {
	Key  ed25519.PublicKey
	Name string // known for devices this one linked, and itself
	This bool
}

// DevicesInfo is the person's device list as this device knows it.
type DevicesInfo struct {
	User    ed25519.PublicKey
	Version uint64 // 0: no list published (the identity key is the only device)
	Devices []DeviceEntry
	Primary bool
}

// RevokeResult is what RevokeDevice did.
type RevokeResult struct {
	Device       ed25519.PublicKey
	Version      uint64
	Groups       int
	GroupsFailed []string // "id: reason"
}

// LinkStep is one step of Link, reported as it happens.
type LinkStep struct {
	// Code and Expires: the code to show (first step).
	Code    string
	Expires time.Time
	// Device: the device certified (second step).
	Device *DeviceEntry
}

// LinkResult is what Link did once the device is in the groups.
type LinkResult struct {
	Device       DeviceEntry
	GroupsAdded  int
	GroupsFailed []string // "id: reason"
}

// AcceptedLink is what AcceptLink stored.
type AcceptedLink struct {
	User, Device ed25519.PublicKey
	Contacts     int
	Groups       int
}
