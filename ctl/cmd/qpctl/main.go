// Command qpctl controls qpd, the per-user quicproquo daemon, over its Unix
// socket. It holds no state and no keys of its own.
//
// Usage:
//
//	qpctl [--socket PATH] [--json] COMMAND [flags]
//
// Exit status: 0 success, 1 error, 2 usage error, 3 qpd is not running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/client"
)

// Exit statuses.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitNotRunning = 3
)

// errUsage marks a command-line mistake.
var errUsage = errors.New("usage")

type app struct {
	stdout, stderr io.Writer
	socket         string
	json           bool
}

type command struct {
	name, args, help string
	run              func(a *app, ctx context.Context, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"ping", "", "measure the round trip to the node", (*app).ping},
		{"register", "", "create this user's identity (once) and print its key", (*app).register},
		{"whoami", "", "print this user's identity key", (*app).whoami},
		{"status", "", "show the daemon's state", (*app).status},
		{"fetch-key", "HEX", "fetch a peer's KeyPackage from the node", (*app).fetchKey},
		{"create-group", "--group-id NAME", "create a group", (*app).createGroup},
		{"invite", "--group-id G --peer-key HEX [--peer-key HEX ...]", "add peers to a group", (*app).invite},
		{"join", "[--wait D]", "accept invitations and list groups joined since (waiting up to D)", (*app).join},
		{"send", "--group-id G --msg TEXT", "send a message", (*app).send},
		{"recv", "[--group-id G] [--wait D] [--follow] [--peek] [--all]", "print new messages and mark them read", (*app).recv},
		{"groups", "", "list groups", (*app).groups},
		{"members", "--group-id G", "list a group's members", (*app).members},
		{"remove", "--group-id G --peer-key HEX", "remove a member", (*app).remove},
		{"leave", "--group-id G", "leave a group", (*app).leave},
		{"update", "[--group-id G]", "rotate own keys (in every group by default)", (*app).update},
	}
}

func (a *app) usage() {
	fmt.Fprintf(a.stderr, `Usage: qpctl [--socket PATH] [--json] COMMAND [flags]

qpctl talks to qpd, the per-user quicproquo daemon, over its socket
(default $QPQ_SOCKET, else %s).

Commands:
`, client.DefaultSocketPathNoEnv())
	for _, c := range commands {
		fmt.Fprintf(a.stderr, "  %-13s %-55s %s\n", c.name, c.args, c.help)
	}
	fmt.Fprint(a.stderr, `
Global flags (also accepted after the command):
  --socket PATH  qpd's socket
  --json         print JSON, one object per line

Exit status: 0 ok, 1 error, 2 usage error, 3 qpd is not running.
`)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("qpctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage()
			return exitOK
		}
		fmt.Fprintln(stderr, "qpctl:", err)
		a.usage()
		return exitUsage
	}
	if fs.NArg() == 0 {
		a.usage()
		return exitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		a.usage()
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return a.exit(name, c.run(a, ctx, rest))
		}
	}
	fmt.Fprintf(stderr, "qpctl: unknown command %q\n", name)
	a.usage()
	return exitUsage
}

func (a *app) globalFlags(fs *flag.FlagSet) {
	if a.socket == "" {
		a.socket = client.DefaultSocketPath()
	}
	fs.StringVar(&a.socket, "socket", a.socket, "qpd's socket (env QPQ_SOCKET)")
	fs.BoolVar(&a.json, "json", a.json, "print JSON lines")
}

// exit reports err and chooses the exit status.
func (a *app) exit(cmd string, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(a.stderr, "qpctl %s: %v\n", cmd, err)
		return exitUsage
	case errors.Is(err, client.ErrDaemonNotRunning):
		fmt.Fprintf(a.stderr, "qpctl: %v.\nStart it with `qpd` (or `systemctl --user start qpd`), or point --socket / QPQ_SOCKET at its socket.\n", err)
		return exitNotRunning
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Canceled:
			return exitError
		case codes.Unimplemented:
			fmt.Fprintf(a.stderr, "qpctl %s: not available in this qpd: %s\n", cmd, st.Message())
			return exitError
		}
		fmt.Fprintf(a.stderr, "qpctl %s: %s (%s)\n", cmd, st.Message(), codeName(st.Code()))
		return exitError
	}
	fmt.Fprintf(a.stderr, "qpctl %s: %v\n", cmd, err)
	return exitError
}

func codeName(c codes.Code) string {
	switch c {
	case codes.PermissionDenied:
		return "permission denied"
	case codes.FailedPrecondition:
		return "failed precondition"
	case codes.Unavailable:
		return "unavailable"
	case codes.NotFound:
		return "not found"
	case codes.InvalidArgument:
		return "invalid argument"
	}
	return c.String()
}

// flags makes a command's flag set, with the global flags included.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("qpctl "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	a.globalFlags(fs)
	return fs
}

// parse parses a command's flags and checks the number of positional
// arguments.
func parse(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() != nargs {
		return fmt.Errorf("%w: want %d argument(s), got %d", errUsage, nargs, fs.NArg())
	}
	return nil
}

func (a *app) dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, a.socket)
}
