package qpd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/internal/devid"
	"github.com/quicproquo/quicproquo/internal/passphrase"
)

// restore gives the state the identity of the backup cfg.Restore, before
// the backend runs. Restarting with the same --restore is harmless: the
// identity is already there.
func restore(ctx context.Context, b *backend.Backend, cfg Config, log *slog.Logger) error {
	f, err := os.Open(cfg.Restore)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	text, err := io.ReadAll(io.LimitReader(f, devid.MaxBackupFile+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("restore: read %s: %w", cfg.Restore, err)
	}
	pass, err := passphrase.Source{File: cfg.PassphraseFile, Getenv: os.Getenv, Terminal: os.Stdin, Prompt: os.Stderr}.Read(false)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer clear(pass)
	os.Unsetenv(passphrase.Env) // nothing qpd starts inherits it
	pub, err := b.RestoreIdentity(ctx, text, pass)
	if err != nil {
		return fmt.Errorf("restore %s: %w", cfg.Restore, err)
	}
	log.Info("identity restored from backup", "identity", backend.FormatKey(pub), "file", cfg.Restore)
	return nil
}
