// Package peercred reads the credentials of the process at the other end of
// a Unix socket connection (SO_PEERCRED on Linux). The kernel records them
// when the peer calls connect, so they cannot be forged by the peer.
package peercred

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// ErrNotUnix: the connection is not a Unix socket connection.
var ErrNotUnix = errors.New("peercred: not a Unix socket connection")

// Cred identifies a peer process.
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

func (c Cred) String() string { return fmt.Sprintf("uid %d gid %d pid %d", c.UID, c.GID, c.PID) }

// FromConn returns the credentials of conn's peer. conn must be a
// *net.UnixConn (or wrap one and expose it via NetConn, as tls.Conn does).
func FromConn(conn net.Conn) (Cred, error) {
	for {
		if u, ok := conn.(*net.UnixConn); ok {
			return fromUnixConn(u)
		}
		w, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return Cred{}, fmt.Errorf("%w: %T", ErrNotUnix, conn)
		}
		conn = w.NetConn()
	}
}

func fromUnixConn(u *net.UnixConn) (Cred, error) {
	raw, err := u.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peercred: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("peercred: %w", err)
	}
	if serr != nil {
		return Cred{}, fmt.Errorf("peercred: SO_PEERCRED: %w", serr)
	}
	return Cred{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}, nil
}
