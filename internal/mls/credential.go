package mls

import "fmt"

// This file is the Credential of RFC 9420 §5.3.

// CredentialType identifies the kind of a Credential (RFC 9420 §17.5).
type CredentialType uint16

// The credential types of RFC 9420 §17.5.
const (
	CredentialBasic CredentialType = 1
	CredentialX509  CredentialType = 2
)

func (t CredentialType) String() string {
	switch t {
	case CredentialBasic:
		return "basic"
	case CredentialX509:
		return "x509"
	default:
		return fmt.Sprintf("credential(0x%04x)", uint16(t))
	}
}

// Credential binds an identity to a signature key (RFC 9420 §5.3). A basic
// credential carries an application-defined Identity; an X.509 credential
// carries a chain of DER certificates, leaf first.
type Credential struct {
	Type         CredentialType
	Identity     []byte   // basic
	Certificates [][]byte // x509: cert_data of each Certificate
}

// NewBasicCredential returns a basic credential for identity.
func NewBasicCredential(identity []byte) Credential {
	return Credential{Type: CredentialBasic, Identity: append([]byte{}, identity...)}
}

// Equal reports whether c and o encode to the same bytes.
func (c *Credential) Equal(o *Credential) bool {
	if c.Type != o.Type {
		return false
	}
	switch c.Type {
	case CredentialBasic:
		return string(c.Identity) == string(o.Identity)
	case CredentialX509:
		if len(c.Certificates) != len(o.Certificates) {
			return false
		}
		for i := range c.Certificates {
			if string(c.Certificates[i]) != string(o.Certificates[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// append appends the TLS encoding of c. A credential of an unknown type has
// no defined body; it is encoded as its type alone and cannot be read back.
func (c *Credential) append(b []byte) []byte {
	b = AppendUint16(b, uint16(c.Type))
	switch c.Type {
	case CredentialBasic:
		b = AppendOpaque(b, c.Identity)
	case CredentialX509:
		b = AppendVector(b, func(b []byte) []byte {
			for _, cert := range c.Certificates {
				b = AppendOpaque(b, cert)
			}
			return b
		})
	}
	return b
}

// Marshal returns the TLS encoding of c.
func (c Credential) Marshal() []byte { return c.append(nil) }

// readCredential reads a Credential. Unknown credential types are an error:
// their body has no length prefix, so they cannot be skipped.
func (r *Reader) readCredential() Credential {
	c := Credential{Type: CredentialType(r.Uint16())}
	if r.Err() != nil {
		return c
	}
	switch c.Type {
	case CredentialBasic:
		c.Identity = r.Opaque()
	case CredentialX509:
		c.Certificates = [][]byte{}
		r.Vector(func(r *Reader) {
			c.Certificates = append(c.Certificates, r.Opaque())
		})
	default:
		r.Fail("unsupported credential type %v", c.Type)
	}
	return c
}

// ParseCredential decodes one Credential that fills b.
func ParseCredential(b []byte) (*Credential, error) {
	r := NewReader(b)
	c := r.readCredential()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("parsing Credential: %w", err)
	}
	return &c, nil
}
