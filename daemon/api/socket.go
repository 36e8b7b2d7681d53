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

// ListenSocket listens on the Unix socket path. The folder is created with
// mode 0700 (and tightened to 0700 if it is ours and not a shared sticky
// folder such as /tmp); the socket gets mode 0600. A stale socket left by a
// daemon that died is removed; a live one makes ListenSocket fail with
// ErrDaemonRunning.
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
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("api: create socket folder: %w", err)
		}
		return os.Chmod(dir, 0o700)
	}
	if err != nil {
		return fmt.Errorf("api: socket folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("api: socket folder %s is not a folder", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) == os.Getuid() && fi.Mode()&fs.ModeSticky == 0 && fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("api: set socket folder mode: %w", err)
		}
	}
	return nil
}
