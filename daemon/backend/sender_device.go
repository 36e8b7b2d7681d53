package backend

import (
	"bytes"
	"time"

	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// sendingDevice is which of a person's devices sent a message: the
// sender leaf's signature key and the label its certificate gives. A
// message is shown under the person; the device is shown on request.
type sendingDevice struct {
	key  []byte
	name string
}

// deviceOf is the sending device of a message from leaf m, which speaks
// for user. The label is read from the leaf's x509 credential, a device
// certificate user issued (a basic credential, the user key itself, has
// none); it is the person's text, shown escaped, never decided on.
func deviceOf(m mls.Member, user []byte, now time.Time) sendingDevice {
	dev := sendingDevice{key: bytes.Clone(m.SignatureKey)}
	if m.Credential.Type != mls.CredentialX509 {
		return dev
	}
	d, err := devid.Verify(m.Credential.Certificates, m.SignatureKey, now)
	if err == nil && bytes.Equal(d.User, user) {
		dev.name = d.Name
	}
	return dev
}
