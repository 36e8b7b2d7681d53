package server

import (
	"errors"
	"fmt"
)

// This file reads just enough of an RFC 9420 KeyPackage (§10) to find its
// leaf's signature key and credential (§5.3): the identity of a
// BasicCredential, or the certificates of an x509 credential, so that the
// node can refuse a package uploaded for someone else. It does not verify
// the package: members that fetch it do.
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
//	    CredentialType credential_type;   // uint16, basic = 1, x509 = 2
//	    select (credential_type) {
//	        case basic: opaque identity<V>;
//	        case x509:  Certificate certificates<V>;  // each opaque cert_data<V>
//	    };
//	} Credential;

// errKeyPackage: a KeyPackage that does not parse or has no acceptable credential.
var errKeyPackage = errors.New("key package")

const (
	mlsVersion10        = 1
	credentialTypeBasic = 1
	credentialTypeX509  = 2
	// maxKPCertificates bounds the certificates read from an x509
	// credential (devid accepts exactly two).
	maxKPCertificates = 8
)

// kpCredential is what the node reads of a KeyPackage's leaf: slices of
// the package.
type kpCredential struct {
	Type         uint16
	SignatureKey []byte
	Identity     []byte   // basic
	Certificates [][]byte // x509, leaf first
}

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
	c, err := keyPackageCredential(b)
	if err != nil {
		return nil, err
	}
	if c.Type != credentialTypeBasic {
		return nil, fmt.Errorf("%w: credential type %d, want basic (1)", errKeyPackage, c.Type)
	}
	return c.Identity, nil
}

// keyPackageCredential reads the leaf signature key and the credential
// (basic or x509) of the KeyPackage in b.
func keyPackageCredential(b []byte) (kpCredential, error) {
	var c kpCredential
	r := &kpReader{b: b}
	version, err := r.uint16("version")
	if err != nil {
		return c, err
	}
	if version != mlsVersion10 {
		return c, fmt.Errorf("%w: protocol version %d, want mls10 (1)", errKeyPackage, version)
	}
	suite, err := r.uint16("cipher_suite")
	if err != nil {
		return c, err
	}
	if suite == 0 {
		return c, fmt.Errorf("%w: reserved cipher suite 0", errKeyPackage)
	}
	if _, err := r.opaque("init_key"); err != nil {
		return c, err
	}
	if _, err := r.opaque("encryption_key"); err != nil {
		return c, err
	}
	if c.SignatureKey, err = r.opaque("signature_key"); err != nil {
		return c, err
	}
	if c.Type, err = r.uint16("credential_type"); err != nil {
		return c, err
	}
	switch c.Type {
	case credentialTypeBasic:
		c.Identity, err = r.opaque("identity")
		return c, err
	case credentialTypeX509:
		list, err := r.opaque("certificates")
		if err != nil {
			return c, err
		}
		lr := &kpReader{b: list}
		for lr.off < len(list) {
			if len(c.Certificates) == maxKPCertificates {
				return c, fmt.Errorf("%w: more than %d certificates", errKeyPackage, maxKPCertificates)
			}
			cert, err := lr.opaque("cert_data")
			if err != nil {
				return c, err
			}
			c.Certificates = append(c.Certificates, cert)
		}
		return c, nil
	}
	return c, fmt.Errorf("%w: credential type %d, want basic (1) or x509 (2)", errKeyPackage, c.Type)
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
