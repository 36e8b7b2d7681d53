// Command qpctl controls qpd, the per-user quicproquo daemon, over its Unix
// socket. It holds no state and no keys of its own.
//
// Usage:
//
//	qpctl [--socket PATH] [--json] COMMAND [flags]
//
// `qpctl help COMMAND` (or `qpctl COMMAND --help`) describes a command with
// examples. The commands live one group per file: node.go (identity and the
// node), identity.go (backup), groups.go, messages.go, trust.go and docs.go
// (completion, man pages); each
// adds its commands to the root in an add…Commands function.
//
// Exit status: 0 success, 1 error, 2 usage error, 3 qpd is not running,
// 4 (send) queued while the node is unreachable.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs qpctl with args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return a.exit(cmd, err)
}
