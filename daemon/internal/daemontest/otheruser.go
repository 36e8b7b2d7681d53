package daemontest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Another local user, played by the test binary re-executed as uid 65534
// (nobody). Tests run as root in CI; elsewhere they skip.

// NobodyUID is the uid the other user runs as.
const NobodyUID = 65534

// hostileEnv makes the test binary act as a hostile listener (see
// HostileListenerMain).
const hostileEnv = "QPQ_TEST_HOSTILE_LISTEN"

// HostileListenerMain, called first in a test package's TestMain, turns a
// re-executed test binary into another user's listener: it makes the
// socket's folder with mode 0777, listens on the socket (mode 0777), says
// "ready", counts every byte its clients send, and when its stdin closes
// prints "bytes N" and exits.
func HostileListenerMain() {
	path := os.Getenv(hostileEnv)
	if path == "" {
		return
	}
	os.Exit(hostileListener(path))
}

func hostileListener(path string) int {
	syscall.Umask(0)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		fmt.Println("error", err)
		return 1
	}
	os.Chmod(dir, 0o777)
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	os.Chmod(path, 0o777)
	var total atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				total.Add(n)
				c.Close()
			}()
		}
	}()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	time.Sleep(100 * time.Millisecond) // let the readers of closed connections finish
	fmt.Println("bytes", total.Load())
	return 0
}

// Hostile is another user's listener on a socket path.
type Hostile struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// StartHostileListener runs the test binary as nobody, listening on path
// in a folder it creates with mode 0777 (see HostileListenerMain). The
// folders above path's folder must let nobody in. It skips the test unless
// running as root.
func StartHostileListener(t *testing.T, path string) *Hostile {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the other user is played by a process running as uid 65534 (nobody)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "hostile")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(bin); d != "/"; d = filepath.Dir(d) {
		if d == os.TempDir() {
			break
		}
		os.Chmod(d, 0o755)
	}
	cmd := exec.Command(bin)
	cmd.Dir = "/"
	cmd.Env = []string{hostileEnv + "=" + path, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: NobodyUID, Gid: NobodyUID}}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &Hostile{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := h.out.ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("hostile listener as nobody: %q %v", line, err)
	}
	return h
}

// BytesReceived stops the listener and reports how many bytes its clients
// sent it.
func (h *Hostile) BytesReceived(t *testing.T) int64 {
	t.Helper()
	h.stdin.Close()
	line, err := h.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "bytes ") {
		t.Fatalf("hostile listener: %q %v", line, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "bytes ")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()
	return n
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
