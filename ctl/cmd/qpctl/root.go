package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/internal/version"
)

// Exit statuses.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitNotRunning = 3
	exitQueued     = 4
)

// silentExit ends qpctl with a status after the command printed what
// there is to say.
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// errUsage marks a command-line mistake.
var errUsage = errors.New("usage")

// callTimeout bounds calls that do not wait on purpose.
const callTimeout = 30 * time.Second

// app is what every command shares: the streams and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	socket         string
	json           bool
	// devices: recv and history show the sending device beside the
	// person (--devices).
	devices bool
	// ran is set once flags and arguments were accepted: an error before
	// that is a usage error.
	ran bool
}

const exitStatusHelp = `Exit status:
  0  success
  1  error (the daemon or the node refused or failed)
  2  usage error (unknown command, bad flag or argument)
  3  qpd is not running (nothing listens on the socket)
  4  send: the message is queued, the node is unreachable; qpd delivers it later
`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "qpctl",
		Short: "Control qpd, the per-user quicproquo daemon",
		Long: `qpctl talks to qpd, the per-user quicproquo daemon, over its Unix socket
(default $QPQ_SOCKET, else ` + client.DefaultSocketPathNoEnv() + `).
It holds no state and no keys of its own.

` + exitStatusHelp,
		Example: `  qpctl register
  qpctl create-group --name team
  qpctl invite --group team --peer-key 3f9a…
  echo hello | qpctl send --group team --file -
  qpctl recv --follow`,
		Version:       version.String(),
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			cmd.Help()
			return fmt.Errorf("%w: a command is required", errUsage)
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return err
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return err
			}
			a.ran = true
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("qpctl {{.Version}}\n")
	root.PersistentFlags().StringVar(&a.socket, "socket", client.DefaultSocketPath(), "qpd's socket (env QPQ_SOCKET)")
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON, one object per line (errors too, on stderr)")
	root.AddGroup(&cobra.Group{ID: "node", Title: "Identity and node:"},
		&cobra.Group{ID: "groups", Title: "Groups:"},
		&cobra.Group{ID: "messages", Title: "Messages:"},
		&cobra.Group{ID: "trust", Title: "Contacts and consent:"})
	a.addNodeCommands(root)
	a.addGroupCommands(root)
	a.addMessageCommands(root)
	a.addTrustCommands(root)
	a.addIdentityCommands(root)
	a.addDeviceCommands(root)
	a.addDocCommands(root)
	return root
}

// dial connects to qpd on the chosen socket.
func (a *app) dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, a.socket)
}

// call dials qpd and runs f with a context bounded by callTimeout+extra.
func (a *app) call(ctx context.Context, extra time.Duration, f func(context.Context, *client.Client) error) error {
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout+extra)
	defer cancel()
	return f(cctx, c)
}

// usagef makes a usage error.
func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// exactArgs accepts exactly n positional arguments, as a usage error
// otherwise.
func exactArgs(n int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
		case n == 0:
			return usagef("takes no arguments, got %q", args)
		default:
			return usagef("want %d argument(s), got %d", n, len(args))
		}
		return nil
	}
}

// failure is a classified error: what is printed and the exit status.
type failure struct {
	code    int
	kind    string // machine-readable kind, for --json
	message string
	hint    string
}

// classify turns err into a failure.
func (a *app) classify(err error) failure {
	switch {
	case errors.Is(err, errUsage) || !a.ran:
		msg := err.Error()
		if errors.Is(err, errUsage) {
			msg = strings.TrimPrefix(msg, errUsage.Error()+": ")
		}
		return failure{code: exitUsage, kind: "usage", message: msg}
	case errors.Is(err, client.ErrForeignDaemon):
		return failure{code: exitError, kind: "foreign_daemon", message: err.Error()}
	case errors.Is(err, client.ErrDaemonNotRunning):
		return failure{code: exitNotRunning, kind: "not_running", message: err.Error(),
			hint: "start it with `qpd` (or `systemctl --user start qpd`), or point --socket / QPQ_SOCKET at its socket"}
	}
	if st, ok := status.FromError(err); ok {
		f := failure{code: exitError, kind: codeKind(st.Code()), message: st.Message()}
		if st.Code() == codes.Unimplemented {
			f.message = "not available in this qpd: " + st.Message()
		}
		return f
	}
	return failure{code: exitError, kind: "error", message: err.Error()}
}

// codeKind names a gRPC code in snake case for --json errors.
func codeKind(c codes.Code) string {
	switch c {
	case codes.PermissionDenied:
		return "permission_denied"
	case codes.FailedPrecondition:
		return "failed_precondition"
	case codes.Unavailable:
		return "unavailable"
	case codes.NotFound:
		return "not_found"
	case codes.InvalidArgument:
		return "invalid_argument"
	case codes.Canceled:
		return "canceled"
	case codes.DeadlineExceeded:
		return "deadline_exceeded"
	case codes.Unimplemented:
		return "unimplemented"
	case codes.AlreadyExists:
		return "already_exists"
	case codes.OutOfRange:
		return "out_of_range"
	}
	return "error"
}

// exit reports err (from cmd) and chooses the exit status.
func (a *app) exit(cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.Canceled {
		return exitError
	}
	var se silentExit
	if errors.As(err, &se) {
		return int(se)
	}
	f := a.classify(err)
	name := "qpctl"
	if cmd != nil && cmd.HasParent() {
		name = cmd.CommandPath()
	}
	if f.code == exitUsage {
		f.hint = "see `" + name + " --help`"
	}
	if a.json {
		obj := map[string]any{"error": map[string]any{"kind": f.kind, "message": f.message, "exit_status": f.code}}
		if f.hint != "" {
			obj["error"].(map[string]any)["hint"] = f.hint
		}
		writeJSON(a.stderr, obj)
		return f.code
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", name, escapeLine(f.message))
	if f.hint != "" {
		fmt.Fprintf(a.stderr, "%s: %s\n", name, f.hint)
	}
	return f.code
}
