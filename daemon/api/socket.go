package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrDaemonRunning: another daemon is serving on the socket.
var ErrDaemonRunning = errors.New("another qpd is already serving on this socket")

// ErrUnsafeSocketFolder: the socket's folder belongs to another user, or
// other users may write to it, so one of them could have put their own
// listener (or a link to one) where qpctl will look for qpd.
var ErrUnsafeSocketFolder = errors.New("unsafe socket folder")

// ListenSocket listens on the Unix socket path. Its folder is created with
// mode 0700 when missing (with mkdir, which fails rather than reuse a folder
// someone else made in between). An existing folder must be a real folder
// (not a link) owned by this user and not writable by group or others, and
// so must its parent unless the parent is a sticky shared folder such as
// /tmp; otherwise ListenSocket fails with ErrUnsafeSocketFolder. A folder of
// ours with another safe mode is tightened to 0700. The socket gets mode
// 0600. A stale socket left by a daemon that died is removed; a live one
// makes ListenSocket fail with ErrDaemonRunning.
func ListenSocket(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("api: empty socket path")
	}
	dir := filepath.Dir(path)
	if err := prepareSocketDir(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("api: %s exists and is not a socket; remove it or choose another --socket", path)
		}
		c, err := net.DialTimeout("unix", path, 2*time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("api: %s: %w", path, ErrDaemonRunning)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("api: check existing socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("api: remove stale socket %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("api: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: set socket mode: %w", err)
	}
	return ln, nil
}

func prepareSocketDir(dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("api: create socket folder: %w", err)
	}
	if err := checkParent(parent); err != nil {
		return err
	}
	created := true
	if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
		created = false
	} else if err != nil {
		return fmt.Errorf("api: create socket folder: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("api: socket folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("api: %w: %s is not a folder (a link or a file); remove it", ErrUnsafeSocketFolder, dir)
	}
	uid, ok := owner(fi)
	switch {
	case !ok:
		return fmt.Errorf("api: %w: %s: cannot read its owner", ErrUnsafeSocketFolder, dir)
	case uid != os.Getuid():
		return fmt.Errorf("api: %w: %s belongs to uid %d, not to this user (uid %d); another user may be waiting there for your messages: remove it, or choose another --socket",
			ErrUnsafeSocketFolder, dir, uid, os.Getuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("api: %w: %s has mode %04o: group or others may write to it; remove it (or chmod 700 it once you trust its contents)",
			ErrUnsafeSocketFolder, dir, fi.Mode().Perm())
	}
	if created || fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("api: set socket folder mode: %w", err)
		}
	}
	return nil
}

// checkParent refuses a parent folder in which others could rename or
// replace the socket folder: one writable by group or others must be
// sticky (as /tmp is), so that only the owner may remove what is in it.
func checkParent(parent string) error {
	fi, err := os.Stat(parent)
	if err != nil {
		return fmt.Errorf("api: socket folder's parent: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("api: %w: %s has mode %04o without the sticky bit: others may replace the socket folder in it",
			ErrUnsafeSocketFolder, parent, fi.Mode().Perm())
	}
	return nil
}

func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
