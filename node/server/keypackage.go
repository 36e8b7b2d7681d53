package server

import (
	"errors"
	"fmt"
)

// This file reads just enough of an RFC 9420 KeyPackage (§10) to find the
// identity of its BasicCredential (§5.3), so that the node can refuse a
// package uploaded for someone else. It does not verify the package: members
// that fetch it do.
//
//	struct {
//	    ProtocolVersion version;          // uint16
//	    CipherSuite cipher_suite;         // uint16
//	    HPKEPublicKey init_key;           // opaque <V>
//	    LeafNode leaf_node;               // encryption_key <V>, signature_key <V>,
//	                                      // credential, ...
//	    ...
//	} KeyPackage;
//
//	struct {
//	    CredentialType credential_type;   // uint16, basic = 1
//	    select (credential_type) { case basic: opaque identity<V>; ... };
//	} Credential;

// errKeyPackage: a KeyPackage that does not parse or has no acceptable credential.
var errKeyPackage = errors.New("key package")

const (
	mlsVersion10        = 1
	credentialTypeBasic = 1
)

// kpReader reads TLS-presentation-language values from a byte slice.
type kpReader struct {
	b   []byte
	off int
}

func (r *kpReader) uint16(what string) (uint16, error) {
	if len(r.b)-r.off < 2 {
		return 0, fmt.Errorf("%w: truncated %s at offset %d", errKeyPackage, what, r.off)
	}
	v := uint16(r.b[r.off])<<8 | uint16(r.b[r.off+1])
	r.off += 2
	return v, nil
}

// varint reads an RFC 9420 §2.1.2 variable-length integer: the top two bits
// of the first byte select 1, 2 or 4 bytes; 0b11 is reserved, and a value
// must use the shortest encoding.
func (r *kpReader) varint(what string) (uint32, error) {
	if r.off >= len(r.b) {
		return 0, fmt.Errorf("%w: truncated %s length at offset %d", errKeyPackage, what, r.off)
	}
	first := r.b[r.off]
	n := 1 << (first >> 6)
	if n == 8 {
		return 0, fmt.Errorf("%w: %s length at offset %d uses the reserved 0b11 prefix", errKeyPackage, what, r.off)
	}
	if len(r.b)-r.off < n {
		return 0, fmt.Errorf("%w: truncated %s length at offset %d", errKeyPackage, what, r.off)
	}
	v := uint32(first & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint32(r.b[r.off+i])
	}
	if (n == 2 && v < 1<<6) || (n == 4 && v < 1<<14) {
		return 0, fmt.Errorf("%w: %s length at offset %d is not minimally encoded", errKeyPackage, what, r.off)
	}
	r.off += n
	return v, nil
}

// opaque reads a <V> vector: a varint length and that many bytes.
func (r *kpReader) opaque(what string) ([]byte, error) {
	n, err := r.varint(what)
	if err != nil {
		return nil, err
	}
	if uint64(len(r.b)-r.off) < uint64(n) {
		return nil, fmt.Errorf("%w: %s of %d bytes at offset %d runs past the end", errKeyPackage, what, n, r.off)
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

// keyPackageIdentity returns the BasicCredential identity of the KeyPackage
// in b (a slice of b).
func keyPackageIdentity(b []byte) ([]byte, error) {
	r := &kpReader{b: b}
	version, err := r.uint16("version")
	if err != nil {
		return nil, err
	}
	if version != mlsVersion10 {
		return nil, fmt.Errorf("%w: protocol version %d, want mls10 (1)", errKeyPackage, version)
	}
	suite, err := r.uint16("cipher_suite")
	if err != nil {
		return nil, err
	}
	if suite == 0 {
		return nil, fmt.Errorf("%w: reserved cipher suite 0", errKeyPackage)
	}
	if _, err := r.opaque("init_key"); err != nil {
		return nil, err
	}
	if _, err := r.opaque("encryption_key"); err != nil {
		return nil, err
	}
	if _, err := r.opaque("signature_key"); err != nil {
		return nil, err
	}
	ctype, err := r.uint16("credential_type")
	if err != nil {
		return nil, err
	}
	if ctype != credentialTypeBasic {
		return nil, fmt.Errorf("%w: credential type %d, want basic (1)", errKeyPackage, ctype)
	}
	return r.opaque("identity")
}

// appendVarint appends v in the RFC 9420 §2.1.2 encoding (v < 2^30).
func appendVarint(b []byte, v uint32) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v>>8)|0x40, byte(v))
	default:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	}
}

// appendOpaque appends a <V> vector.
func appendOpaque(b, v []byte) []byte {
	return append(appendVarint(b, uint32(len(v))), v...)
}
