package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// addDocCommands adds `man`, which writes man pages generated from the
// commands. (`completion` is cobra's own: bash, zsh, fish, powershell.)
func (a *app) addDocCommands(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use:   "man DIR",
		Short: "Write man pages for qpctl and its commands into DIR",
		Long: `Write one man page per command (qpctl.1, qpctl-send.1, ...) into DIR,
generated from the commands themselves.`,
		Example: "  qpctl man /usr/local/share/man/man1",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			hdr := &doc.GenManHeader{Title: "QPCTL", Section: "1", Source: "quicproquo " + cmd.Root().Version, Manual: "quicproquo"}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			if !a.json {
				a.stderrf("qpctl man: wrote man pages into %s\n", args[0])
			}
			return nil
		},
	})
}
