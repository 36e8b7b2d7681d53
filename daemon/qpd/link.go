package qpd

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/quicproquo/quicproquo/daemon/backend"
)

// linkDevice makes the state a new device of the person whose primary
// shows cfg.Link, before the backend runs. Restarting with the same
// --link on a state that has an identity does nothing: the code is one-use
// and the identity is already there.
func linkDevice(ctx context.Context, b *backend.Backend, cfg Config, log *slog.Logger) error {
	name := cfg.LinkName
	if name == "" {
		name, _ = os.Hostname()
		if len(name) > 64 {
			name = name[:64]
		}
	}
	r, err := b.AcceptLinkShowing(ctx, cfg.Link, name, 0, func(device ed25519.PublicKey) {
		fmt.Fprintf(os.Stderr, "qpd: this device's key is %s: compare it with the key the primary device shows before it says yes\n", backend.FormatKey(device))
	})
	if errors.Is(err, backend.ErrIdentityPresent) {
		log.Info("state has an identity already; --link ignored")
		return nil
	}
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	log.Info("linked as a new device", "identity", backend.FormatKey(r.User), "device", backend.FormatKey(r.Device),
		"contacts", r.Contacts, "groups", r.Groups)
	return nil
}
