package link

import (
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/quicproquo/quicproquo/internal/devid"
)

// This file encodes the two messages. All integers are big-endian; every
// variable field has a length prefix and a bound; a parse reads exactly
// the whole message.
//
//	Request  = format(1)=1 | device(32) | nameLen(1) name | sig(64)
//	  sig    = Ed25519 by device over RequestLabel | slot(32) | everything before sig
//	Response = format(1)=1 | user(32)
//	         | certCount(1)=2 { certLen(2) cert }
//	         | listLen(2) list
//	         | contactCount(2) { nameLen(1) name | key(32) | verified(1) 0/1 }
//	         | groupCount(2)   { idLen(1) id | nameLen(2) name }

// RequestLabel is the domain separation of a request's signature.
const RequestLabel = "qpq-link-request-v1"

// Bounds of the messages.
const (
	MaxDeviceName  = 64
	MaxContacts    = 1000
	MaxGroups      = 1000
	MaxContactName = 255
	MaxGroupID     = 64
	MaxGroupName   = 1024
	maxList        = 4096 // devid.MaxDeviceListSize
	format         = 1
)

// The refusals of the decoders and checks.
var (
	// ErrMalformed: bytes that are not a message of this format.
	ErrMalformed = errors.New("link: malformed message")
	// ErrRequest: a request whose signature is not its device's over
	// this slot (made for another code, or changed).
	ErrRequest = errors.New("link: request not signed by its device for this code")
	// ErrWrongUser: a response whose device certificate is not issued by
	// the user it names, or does not name this device.
	ErrWrongUser = errors.New("link: device certificate not issued by the response's user for this device")
)

// Request asks the primary to certify Device.
type Request struct {
	Device ed25519.PublicKey
	// Name is the label the new device gives itself (shown, never
	// decided on).
	Name string
}

// MarshalRequest encodes a request for device (whose private key signs
// it) at the slot of k.
func MarshalRequest(k *Keys, device ed25519.PrivateKey, name string) ([]byte, error) {
	if len(device) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: device key has %d bytes", ErrMalformed, len(device))
	}
	if err := checkText(name, MaxDeviceName, "device name"); err != nil {
		return nil, err
	}
	b := []byte{format}
	b = append(b, device.Public().(ed25519.PublicKey)...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, ed25519.Sign(device, requestTranscript(k, b))...), nil
}

func requestTranscript(k *Keys, body []byte) []byte {
	t := make([]byte, 0, len(RequestLabel)+SlotSize+len(body))
	t = append(t, RequestLabel...)
	t = append(t, k.Slot[:]...)
	return append(t, body...)
}

// ParseRequest decodes a request and checks its signature for the slot
// of k.
func ParseRequest(k *Keys, b []byte) (*Request, error) {
	r := reader{b: b}
	if f := r.byte(); f != format {
		return nil, fmt.Errorf("%w: request format %d", ErrMalformed, f)
	}
	dev := r.bytes(ed25519.PublicKeySize)
	name := r.bytes(int(r.byte()))
	body := len(b) - len(r.b)
	sig := r.bytes(ed25519.SignatureSize)
	if err := r.end("request"); err != nil {
		return nil, err
	}
	if err := checkText(string(name), MaxDeviceName, "device name"); err != nil {
		return nil, err
	}
	if !ed25519.Verify(ed25519.PublicKey(dev), requestTranscript(k, b[:body]), sig) {
		return nil, ErrRequest
	}
	return &Request{Device: ed25519.PublicKey(append([]byte{}, dev...)), Name: string(name)}, nil
}

// Contact is one of the person's contacts, as the primary has it.
type Contact struct {
	Name     string
	Key      ed25519.PublicKey
	Verified bool
}

// Group is one of the person's groups: the new device joins it from the
// Welcome the primary sends, and knows it by this name until then.
type Group struct {
	ID   []byte
	Name string
}

// Response is what the primary answers: the linked identity.
type Response struct {
	User ed25519.PublicKey
	// Chain is the device's MLS x509 credential: its certificate issued
	// by User, then User's certificate.
	Chain [][]byte
	// DeviceList is User's signed device list, which holds the device.
	DeviceList []byte
	Contacts   []Contact
	Groups     []Group
}

// Marshal encodes r.
func (r *Response) Marshal() ([]byte, error) {
	if len(r.User) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: user key has %d bytes", ErrMalformed, len(r.User))
	}
	if len(r.Chain) != devid.ChainLength {
		return nil, fmt.Errorf("%w: %d certificates, want %d", ErrMalformed, len(r.Chain), devid.ChainLength)
	}
	if len(r.DeviceList) == 0 || len(r.DeviceList) > maxList {
		return nil, fmt.Errorf("%w: device list of %d bytes", ErrMalformed, len(r.DeviceList))
	}
	if len(r.Contacts) > MaxContacts || len(r.Groups) > MaxGroups {
		return nil, fmt.Errorf("%w: %d contacts, %d groups (limits %d, %d)", ErrMalformed, len(r.Contacts), len(r.Groups), MaxContacts, MaxGroups)
	}
	b := []byte{format}
	b = append(b, r.User...)
	b = append(b, byte(len(r.Chain)))
	for _, c := range r.Chain {
		if len(c) == 0 || len(c) > devid.MaxCertSize {
			return nil, fmt.Errorf("%w: certificate of %d bytes", ErrMalformed, len(c))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.DeviceList)))
	b = append(b, r.DeviceList...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Contacts)))
	for _, c := range r.Contacts {
		if err := checkText(c.Name, MaxContactName, "contact name"); err != nil {
			return nil, err
		}
		if len(c.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: contact %q key has %d bytes", ErrMalformed, c.Name, len(c.Key))
		}
		b = append(b, byte(len(c.Name)))
		b = append(b, c.Name...)
		b = append(b, c.Key...)
		if c.Verified {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Groups)))
	for _, g := range r.Groups {
		if len(g.ID) == 0 || len(g.ID) > MaxGroupID {
			return nil, fmt.Errorf("%w: group id of %d bytes", ErrMalformed, len(g.ID))
		}
		if err := checkText(g.Name, MaxGroupName, "group name"); err != nil {
			return nil, err
		}
		b = append(b, byte(len(g.ID)))
		b = append(b, g.ID...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.Name)))
		b = append(b, g.Name...)
	}
	if len(b) > MaxPayload-100 {
		return nil, fmt.Errorf("%w: response of %d bytes, limit %d", ErrMalformed, len(b), MaxPayload-100)
	}
	return b, nil
}

// ParseResponse decodes a response. It checks the form only: CheckChain
// and devid.ParseDeviceList check what it says.
func ParseResponse(b []byte) (*Response, error) {
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	rd := reader{b: b}
	if f := rd.byte(); f != format {
		return nil, fmt.Errorf("%w: response format %d", ErrMalformed, f)
	}
	r := &Response{User: ed25519.PublicKey(clone(rd.bytes(ed25519.PublicKeySize)))}
	if n := int(rd.byte()); n != devid.ChainLength && rd.err == nil {
		return nil, fmt.Errorf("%w: %d certificates, want %d", ErrMalformed, n, devid.ChainLength)
	}
	for range devid.ChainLength {
		n := int(rd.u16())
		if (n == 0 || n > devid.MaxCertSize) && rd.err == nil {
			return nil, fmt.Errorf("%w: certificate of %d bytes", ErrMalformed, n)
		}
		r.Chain = append(r.Chain, clone(rd.bytes(n)))
	}
	n := int(rd.u16())
	if (n == 0 || n > maxList) && rd.err == nil {
		return nil, fmt.Errorf("%w: device list of %d bytes", ErrMalformed, n)
	}
	r.DeviceList = clone(rd.bytes(n))
	nc := int(rd.u16())
	if nc > MaxContacts {
		return nil, fmt.Errorf("%w: %d contacts, limit %d", ErrMalformed, nc, MaxContacts)
	}
	for i := 0; i < nc && rd.err == nil; i++ {
		name := string(rd.bytes(int(rd.byte())))
		key := clone(rd.bytes(ed25519.PublicKeySize))
		v := rd.byte()
		if rd.err != nil {
			break
		}
		if v > 1 {
			return nil, fmt.Errorf("%w: contact %d verified flag %d", ErrMalformed, i, v)
		}
		if err := checkText(name, MaxContactName, "contact name"); err != nil {
			return nil, err
		}
		r.Contacts = append(r.Contacts, Contact{Name: name, Key: ed25519.PublicKey(key), Verified: v == 1})
	}
	ng := int(rd.u16())
	if ng > MaxGroups {
		return nil, fmt.Errorf("%w: %d groups, limit %d", ErrMalformed, ng, MaxGroups)
	}
	for i := 0; i < ng && rd.err == nil; i++ {
		idLen := int(rd.byte())
		if (idLen == 0 || idLen > MaxGroupID) && rd.err == nil {
			return nil, fmt.Errorf("%w: group %d id of %d bytes", ErrMalformed, i, idLen)
		}
		id := clone(rd.bytes(idLen))
		nameLen := int(rd.u16())
		if nameLen > MaxGroupName && rd.err == nil {
			return nil, fmt.Errorf("%w: group %d name of %d bytes", ErrMalformed, i, nameLen)
		}
		name := string(rd.bytes(nameLen))
		if rd.err != nil {
			break
		}
		if err := checkText(name, MaxGroupName, "group name"); err != nil {
			return nil, err
		}
		r.Groups = append(r.Groups, Group{ID: id, Name: name})
	}
	if err := rd.end("response"); err != nil {
		return nil, err
	}
	return r, nil
}

// CheckChain checks that r's chain is a device certificate issued by r's
// user for device, valid at now, and returns what it certifies. A chain
// that does not verify fails with the devid error; one that verifies but
// for another user than r.User fails with ErrWrongUser.
func (r *Response) CheckChain(device ed25519.PublicKey, now time.Time) (*devid.Device, error) {
	d, err := devid.Verify(r.Chain, device, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongUser, err)
	}
	if len(r.User) != ed25519.PublicKeySize || subtle.ConstantTimeCompare(d.User, r.User) != 1 {
		return nil, fmt.Errorf("%w: chain issued by %x, response names %x", ErrWrongUser, []byte(d.User), []byte(r.User))
	}
	return d, nil
}

func checkText(s string, max int, what string) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrMalformed, what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrMalformed, what)
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// reader reads a message front to back; after the first short read every
// read returns zeros and err is set.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%w: %d bytes short", ErrMalformed, n-len(r.b))
		r.b = nil
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) end(what string) error {
	if r.err != nil {
		return fmt.Errorf("%s: %w", what, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the %s", ErrMalformed, len(r.b), what)
	}
	return nil
}
