package backend

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"

	"github.com/quicproquo/quicproquo/internal/mls"
)

// sendingDevice is which of a person's devices sent a message: the
// sender leaf's signature key and the label its certificate gives. A
// message is shown under the person; the device is shown on request.
type sendingDevice struct {
	key  []byte
	name string
}

// senderOf is the person leaf m speaks for (userOf: nil when it does not
// pass the identity rule) and the device it is. The label is the common
// name of the leaf's device certificate, which the rule has just checked
// to be issued by the person (a basic credential, the user key itself,
// has none); it is the person's text, shown escaped, never decided on.
func senderOf(m mls.Member) (ed25519.PublicKey, sendingDevice) {
	dev := sendingDevice{key: bytes.Clone(m.SignatureKey)}
	user := userOf(m)
	if user == nil || m.Credential.Type != mls.CredentialX509 || len(m.Credential.Certificates) == 0 {
		return user, dev
	}
	if c, err := x509.ParseCertificate(m.Credential.Certificates[0]); err == nil {
		dev.name = c.Subject.CommonName
	}
	return user, dev
}
