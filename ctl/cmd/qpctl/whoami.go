package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

func (a *app) whoamiCommand() *cobra.Command {
	var qr bool
	cmd := &cobra.Command{
		Use: "whoami [--qr]", Short: "Print this user's identity key (--qr: also as a QR code)", GroupID: "node",
		Long: `Print this user's identity key: 64 hex characters to give to people who want
to add you as a contact (qpctl contact add NAME KEY) or to a group. With --qr
the key is also drawn as a QR code on the terminal, for a phone or camera to
scan; the code holds exactly the 64 characters.`,
		Args: exactArgs(0),
		Example: `  qpctl whoami
  qpctl whoami --qr`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				st, err := c.Status(ctx, &daemonv1.StatusRequest{})
				if err != nil {
					return err
				}
				if !st.GetRegistered() {
					return errors.New("not registered yet: run `qpctl register`")
				}
				id := st.GetIdentity()
				var code string
				if qr {
					if code, err = keyQR(id); err != nil {
						return err
					}
				}
				if a.json {
					out := map[string]any{"identity": id}
					if qr {
						out["qr"] = code
					}
					return a.printJSON(out)
				}
				if err := a.printf("%s\n", id); err != nil || !qr {
					return err
				}
				return a.printf("%s", code)
			})
		},
	}
	cmd.Flags().BoolVar(&qr, "qr", false, "also draw the key as a QR code")
	return cmd
}

// keyQR draws text as a QR code (error correction M, quiet zone included)
// in half-block characters, two rows of modules a line: the light modules
// are drawn, the dark ones left blank, which reads right on the usual
// light-on-dark terminal.
func keyQR(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("qr code: %w", err)
	}
	return q.ToSmallString(false), nil
}
