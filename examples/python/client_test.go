// Package pythonexample runs qpd_client.py, a third-party Python client of
// qpd's gRPC API, against a real qpd. It needs /usr/bin/python3 with
// Debian's python3-grpcio and python3-protobuf, and protoc; without them
// the test skips, unless QPQ_PYTHON_REQUIRED=1 (as in CI) makes it fail.
package pythonexample

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

func needPython(t *testing.T) {
	t.Helper()
	err := exec.Command(python, "-c", "import grpc, google.protobuf").Run()
	if err == nil {
		_, err = exec.LookPath("protoc")
	}
	if err != nil {
		if os.Getenv("QPQ_PYTHON_REQUIRED") == "1" {
			t.Fatalf("python3-grpcio, python3-protobuf or protoc missing: %v", err)
		}
		t.Skipf("needs %s with grpc and protobuf, and protoc (apt-get install python3-grpcio python3-protobuf protobuf-compiler): %v", python, err)
	}
}

// startQPD builds and starts qpd on socket, waiting for its READY=1.
func startQPD(t *testing.T, dir, socket string) {
	t.Helper()
	bin := filepath.Join(dir, "qpd")
	if out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/quicproquo/quicproquo/daemon/cmd/qpd").CombinedOutput(); err != nil {
		t.Fatalf("go build qpd: %v\n%s", err, out)
	}
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	cmd := exec.Command(bin, "--state-dir", filepath.Join(dir, "state"), "--socket", socket, "--server", "127.0.0.1:9")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 512)
	notify.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := notify.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("qpd not ready: %v\n%s", err, stderr.String())
	}
}

func TestPythonClientAgainstQpd(t *testing.T) {
	needPython(t)
	dir, err := os.MkdirTemp("", "qpdpy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "run", "qpd.sock")
	startQPD(t, dir, socket)

	py := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(python, append([]string{"qpd_client.py", "--socket", socket}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("qpd_client.py %q: %v\n%s", args, err, stderr.String())
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("qpd_client.py %q printed %q: %v", args, out, err)
		}
		return v
	}
	st := py("status")
	if st["registered"] != nil && st["registered"] != false {
		t.Fatalf("status of a fresh qpd: %v", st)
	}
	if node, _ := st["node"].(map[string]any); node["address"] != "127.0.0.1:9" {
		t.Fatalf("status: %v", st)
	}
	// Creating a group needs an identity; the API says so.
	cmd := exec.Command(python, "qpd_client.py", "--socket", socket, "create-group", "team")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FAILED_PRECONDITION") {
		t.Fatalf("create-group before register: %v %s", err, out)
	}
	id, _ := py("register")["identity"].(string)
	if len(id) != 64 {
		t.Fatalf("register: identity %q", id)
	}
	g, _ := py("create-group", "team")["group"].(map[string]any)
	if g["name"] != "team" {
		t.Fatalf("create-group: %v", g)
	}
	text := "héllo\nfrom Python"
	if sent := py("send", "team", text); sent["message_id"] == nil {
		t.Fatalf("send: %v", sent)
	}
	msgs, _ := py("messages", "team")["messages"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("messages: %v", msgs)
	}
	if m, _ := msgs[0].(map[string]any); m["text"] != text || m["sender"] != id || m["outgoing"] != true {
		t.Fatalf("message: %v", m)
	}
}
