package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/internal/passphrase"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// addIdentityCommands adds `identity export`, the backup of the identity
// key (restored with `qpd --restore FILE`).
func (a *app) addIdentityCommands(root *cobra.Command) {
	identity := &cobra.Command{
		Use: "identity", Short: "Back up this user's identity key", GroupID: "node",
		Args: exactArgs(0), RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var out, passFile string
	export := &cobra.Command{
		Use: "export --out FILE", Short: "Write the identity key, sealed under a passphrase, to FILE",
		Long: `Write the identity key, sealed under a passphrase (Argon2id, XChaCha20-Poly1305),
to FILE (mode 0600; an existing file is not overwritten). On a new machine,
` + "`qpd --restore FILE`" + ` starts with the same identity, so contacts keep their
safety numbers with you. Groups, contacts and history are not in the backup.
The passphrase (at least 8 bytes) is read from --passphrase-file, else from
$` + passphrase.Env + `, else asked twice on the terminal.`,
		Args: exactArgs(0), Example: "  qpctl identity export --out ~/qpq-identity.pem",
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := passphrase.Source{File: passFile, Getenv: os.Getenv, Terminal: os.Stdin, Prompt: a.stderr}.Read(true)
			if err != nil {
				return err
			}
			defer clear(pass)
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.ExportIdentity(ctx, &daemonv1.ExportIdentityRequest{Passphrase: pass})
				if err != nil {
					return err
				}
				if err := writeNew(out, r.GetBackup()); err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]any{"identity": r.GetIdentity(), "file": out})
				}
				return a.printf("identity %s written to %s\n", r.GetIdentity(), out)
			})
		},
	}
	export.Flags().StringVar(&out, "out", "", "file to write the backup to")
	export.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from the first line of this file")
	export.MarkFlagRequired("out")
	identity.AddCommand(export)
	root.AddCommand(identity)
}

// writeNew writes b to a new file at path, readable by this user only.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write backup: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write backup: %w", err)
	}
	return nil
}
