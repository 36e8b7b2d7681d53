// Package client is the typed Go client of qpd's API: it finds the socket,
// tells "qpd is not running" apart from other failures, and exposes the
// generated daemonv1.DaemonClient.
//
// Before anything is sent on a connection, the client asks the kernel
// (SO_PEERCRED) which user the listening process runs as, and refuses a
// daemon of any other user with ErrForeignDaemon: on a shared machine
// another user could otherwise put a listener where the socket is expected
// and read every message sent to it.
//
//	c, err := client.Dial(ctx, client.DefaultSocketPath())
//	if errors.Is(err, client.ErrDaemonNotRunning) { ... }
//	defer c.Close()
//	st, err := c.Status(ctx, &daemonv1.StatusRequest{})
package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/quicproquo/quicproquo/internal/peercred"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// ErrDaemonNotRunning: nothing listens on the socket.
var ErrDaemonNotRunning = errors.New("qpd is not running")

// ErrSocketPermission: the socket exists but this user may not use it.
var ErrSocketPermission = errors.New("no permission to use the qpd socket")

// ErrForeignDaemon: the process listening on the socket runs as another
// user than this one. Nothing was sent to it.
var ErrForeignDaemon = errors.New("the process on the qpd socket runs as another user")

// SocketEnv is the environment variable that overrides the socket path.
const SocketEnv = "QPQ_SOCKET"

// DefaultSocketPath is $QPQ_SOCKET, else $XDG_RUNTIME_DIR/quicproquo/qpd.sock,
// else /run/user/<uid>/quicproquo/qpd.sock when /run/user/<uid> exists,
// else <tmp>/quicproquo-<uid>/qpd.sock.
func DefaultSocketPath() string {
	if p := os.Getenv(SocketEnv); p != "" {
		return p
	}
	return DefaultSocketPathNoEnv()
}

// DefaultSocketPathNoEnv is DefaultSocketPath ignoring $QPQ_SOCKET.
func DefaultSocketPathNoEnv() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "quicproquo", "qpd.sock")
	}
	uid := strconv.Itoa(os.Getuid())
	if fi, err := os.Stat(filepath.Join("/run/user", uid)); err == nil && fi.IsDir() {
		return filepath.Join("/run/user", uid, "quicproquo", "qpd.sock")
	}
	return filepath.Join(os.TempDir(), "quicproquo-"+uid, "qpd.sock")
}

// Client is a connection to qpd.
type Client struct {
	daemonv1.DaemonClient
	Health healthpb.HealthClient
	conn   *grpc.ClientConn
	path   string
}

// Dial connects to qpd on the Unix socket path. It first checks that a
// daemon listens there: if not, the error wraps ErrDaemonNotRunning.
func Dial(ctx context.Context, path string) (*Client, error) {
	if path == "" {
		path = DefaultSocketPath()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("qpd socket %s: %w", path, err)
	}
	if err := probe(ctx, abs); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialChecked),
		// A local daemon that restarts is back within seconds: retry often.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}, MinConnectTimeout: 5 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, fmt.Errorf("qpd socket %s: %w", abs, err)
	}
	return &Client{DaemonClient: daemonv1.NewDaemonClient(conn), Health: healthpb.NewHealthClient(conn), conn: conn, path: abs}, nil
}

// dialChecked connects to the Unix socket addr and checks the listener's
// user before handing the connection to gRPC.
func dialChecked(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "unix", strings.TrimPrefix(addr, "unix://"))
	if err != nil {
		return nil, err
	}
	if err := checkOwner(c, addr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkOwner fails with ErrForeignDaemon unless the peer of c runs as this
// process's user.
func checkOwner(c net.Conn, path string) error {
	cred, err := peercred.FromConn(c)
	if err != nil {
		return fmt.Errorf("qpd socket %s: %w", path, err)
	}
	if int(cred.UID) != os.Getuid() {
		return fmt.Errorf("%w: %s is served by uid %d (pid %d), and you are uid %d; nothing was sent. Another user may be impersonating qpd: remove the socket's folder, or point --socket / QPQ_SOCKET at your own qpd",
			ErrForeignDaemon, path, cred.UID, cred.PID, os.Getuid())
	}
	return nil
}

func probe(ctx context.Context, path string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		defer c.Close()
		return checkOwner(c, path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (no daemon on %s)", ErrDaemonNotRunning, path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w %s: qpd serves only the user it runs as", ErrSocketPermission, path)
	}
	return fmt.Errorf("qpd socket %s: %w", path, err)
}

// SocketPath is the socket this client uses.
func (c *Client) SocketPath() string { return c.path }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
