package mls

import "fmt"

// ProtocolVersion is the MLS protocol version (RFC 9420 §6).
type ProtocolVersion uint16

// MLS10 is the only version this package speaks.
const MLS10 ProtocolVersion = 1

// CipherSuite is a cipher suite code point (RFC 9420 §17.1).
type CipherSuite uint16

// The cipher suites of RFC 9420 §17.1.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        CipherSuite = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             CipherSuite = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 CipherSuite = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            CipherSuite = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             CipherSuite = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     CipherSuite = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             CipherSuite = 0x0007
)

func (cs CipherSuite) String() string { return fmt.Sprintf("0x%04x", uint16(cs)) }

// ExtensionType identifies an extension (RFC 9420 §17.3).
type ExtensionType uint16

// The extension types of RFC 9420 §17.3.
const (
	ExtensionApplicationID        ExtensionType = 0x0001
	ExtensionRatchetTree          ExtensionType = 0x0002
	ExtensionRequiredCapabilities ExtensionType = 0x0003
	ExtensionExternalPub          ExtensionType = 0x0004
	ExtensionExternalSenders      ExtensionType = 0x0005
	// ExtensionLastResort is the last_resort KeyPackage extension of
	// draft-ietf-mls-extensions (0x000a).
	ExtensionLastResort ExtensionType = 0x000a
)

// Extension is one entry of an extension list (RFC 9420 §13).
type Extension struct {
	Type ExtensionType
	Data []byte
}

// AppendExtensions appends an extension list (Extension extensions<V>).
func AppendExtensions(b []byte, exts []Extension) []byte {
	return AppendVector(b, func(b []byte) []byte {
		for _, e := range exts {
			b = AppendUint16(b, uint16(e.Type))
			b = AppendOpaque(b, e.Data)
		}
		return b
	})
}

// ReadExtensions reads an extension list. Duplicate types are an error
// (RFC 9420 §13.4: a list must not contain the same type twice).
func (r *Reader) ReadExtensions() []Extension {
	exts := []Extension{}
	seen := map[ExtensionType]bool{}
	r.Vector(func(r *Reader) {
		e := Extension{Type: ExtensionType(r.Uint16()), Data: r.Opaque()}
		if r.Err() != nil {
			return
		}
		if seen[e.Type] {
			r.Fail("duplicate extension type %d", e.Type)
			return
		}
		seen[e.Type] = true
		exts = append(exts, e)
	})
	return exts
}

// FindExtension returns the first extension of type t, or false.
func FindExtension(exts []Extension, t ExtensionType) (Extension, bool) {
	for _, e := range exts {
		if e.Type == t {
			return e, true
		}
	}
	return Extension{}, false
}
